"""Uploading files into a dataset: plain images one by one, .zip files via imports.import_zip."""
from __future__ import annotations

from typing import BinaryIO, Iterable

from sqlalchemy.exc import IntegrityError

from app.blueprints.datasets.images.imports import import_zip
from app.blueprints.datasets.images.intake import (
    BadImage, check_image, clean_filename, find_duplicate, new_image, remove_unreferenced, write_files,
)
from app.blueprints.datasets.images.results import ADDED, DUPLICATE, ERROR, FileResult
from app.errors import DomainError
from app.extensions import db


def add_image_bytes(dataset_id: int, user_id: int | None, filename: str, data: bytes) -> FileResult:
    """Check and store one image and commit its row; bad files give an 'error' result, not an exception."""
    name = clean_filename(filename)
    try:
        checked = check_image(data)
    except BadImage as err:
        return FileResult(name, ERROR, err.message)
    if find_duplicate(dataset_id, checked.sha256):
        return FileResult(name, DUPLICATE, "Already in this dataset (an identical file); skipped.")
    created = write_files(checked)  # files first: a committed row must never point at a missing file
    image = new_image(dataset_id, checked, name, user_id)
    db.session.add(image)
    try:
        db.session.commit()
    except IntegrityError:  # the same file arrived concurrently
        db.session.rollback()
        return FileResult(name, DUPLICATE, "Already in this dataset (an identical file); skipped.")
    except BaseException:
        db.session.rollback()
        if created:
            remove_unreferenced([checked.sha256])
        raise
    return FileResult(name, ADDED, "Added.", image_id=image.id)


def is_zip_name(filename: str) -> bool:
    return (filename or "").lower().endswith(".zip")


def upload_files(dataset_id: int, user_id: int | None, files: Iterable[tuple[str, BinaryIO]]) -> list[FileResult]:
    """Add every (filename, stream); a bad file gets an error result and does not stop the others."""
    results: list[FileResult] = []
    for filename, stream in files:
        if is_zip_name(filename):
            try:
                results.extend(import_zip(dataset_id, user_id, stream))
            except DomainError as err:
                results.append(FileResult(clean_filename(filename), ERROR, err.message))
        else:
            results.append(add_image_bytes(dataset_id, user_id, filename, stream.read()))
    return results
