"""Uploading files into a dataset: a few loose images are added at once (the answer lists each one); a
.zip, or more loose images than SYNC_UPLOAD_MAX_FILES, becomes a background import (imports.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Iterable

from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from app import quotas
from app.blueprints.datasets.classes import get_label
from app.blueprints.datasets.images.imports import import_json, start_files_import, start_zip_import
from app.blueprints.datasets.images.intake import (
    BadImage, check_image, clean_filename, find_duplicate, new_image, remove_unreferenced, sha256_of, write_files,
)
from app.blueprints.datasets.images.results import ADDED, DUPLICATE, ERROR, FileResult, summarize_results
from app.blueprints.datasets.images.sources import read_capped
from app.errors import DomainError, NotFound, ValidationError
from app.extensions import db
from app.ids import parse_id
from app.models import Import, Label

DUPLICATE_MESSAGE = _l("Already in this dataset (an identical file); skipped.")


def add_image_bytes(dataset_id: int, user_id: int | None, filename: str, data: bytes,
                    label: Label | None = None) -> FileResult:
    """Check and store one image and commit its row (in `label`'s class, when given: a class of this
    dataset); bad files give an 'error' result, not an exception. The bytes are hashed first: a duplicate
    is never decoded (and keeps the class it has)."""
    name = clean_filename(filename)
    sha = sha256_of(data)
    if data and find_duplicate(dataset_id, sha):
        return FileResult(name, DUPLICATE, str(DUPLICATE_MESSAGE))
    owner_id = quotas.owner_of(dataset_id)
    if not _fits(owner_id, len(data)):  # before decoding: no work for a file that cannot be kept
        return _over_quota(name, owner_id, len(data))
    try:
        checked = check_image(data, sha256=sha)
    except BadImage as err:
        return FileResult(name, ERROR, err.message)
    created = write_files(checked)  # files first: a committed row must never point at a missing file
    image = new_image(dataset_id, checked, name, user_id, label_id=label.id if label else None, label_source="user")
    db.session.add(image)
    try:
        if not quotas.reserve_images(owner_id, 1, len(data)):  # counted in the row's own transaction
            db.session.rollback()
            if created:
                remove_unreferenced([checked.sha256])
            return _over_quota(name, owner_id, len(data))
        db.session.commit()
    except IntegrityError:  # the same file arrived concurrently
        db.session.rollback()
        return FileResult(name, DUPLICATE, str(DUPLICATE_MESSAGE))
    except BaseException:
        db.session.rollback()
        if created:
            remove_unreferenced([checked.sha256])
        raise
    return FileResult(name, ADDED, _("Added."), label=label.name if label else None, image_id=image.id)


def _fits(owner_id: int, size: int) -> bool:
    images, nbytes = quotas.image_room(owner_id)
    return images != 0 and (nbytes is None or size <= nbytes)


def _over_quota(name: str, owner_id: int, size: int) -> FileResult:
    return FileResult(name, ERROR, _("Not added: %(reason)s", reason=quotas.images_full_message(owner_id, 1, size)))


def _add_stream(dataset_id: int, user_id: int | None, filename: str, stream: BinaryIO,
                label: Label | None = None) -> FileResult:
    try:
        data = read_capped(stream, current_app.config["MAX_IMAGE_BYTES"])
    except BadImage as err:
        return FileResult(clean_filename(filename), ERROR, err.message)
    return add_image_bytes(dataset_id, user_id, filename, data, label)


def is_zip_name(filename: str) -> bool:
    return (filename or "").lower().endswith(".zip")


@dataclass
class Upload:
    """What one upload request did: files handled at once, and the imports it started."""

    results: list[FileResult] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if self.imports and not self.results:
            return _("Import started; it continues in the background.")
        return summarize_results(self.results)

    def to_json(self) -> dict:
        doc = {"summary": self.summary, "results": [r.to_dict() for r in self.results]}
        if self.imports:
            doc["import"] = import_json(self.imports[0])
            doc["imports"] = [import_json(imp) for imp in self.imports]
        return doc


def label_field(value: str | None) -> int | None:
    """The class id of an upload form's optional `label_id` field: empty is None (the images stay
    unlabeled); anything but an id is a class that does not exist (404, as an unknown id is)."""
    value = (value or "").strip()
    if not value:
        return None
    label_id = parse_id(value)
    if label_id is None:
        raise NotFound(_("This class does not exist in this dataset."))
    return label_id


def _upload_label(dataset_id: int, label_id: int | None, names: list[str]) -> Label | None:
    """The class the uploaded images go to, checked before anything is stored: a class of another
    dataset is NotFound; a zip says its classes by its folders, so a class given with one is refused."""
    if label_id is None:
        return None
    label = get_label(dataset_id, label_id)
    if any(is_zip_name(name) for name in names):
        raise ValidationError(_("A class can be given to images only: a zip's folders give its classes. "
                                "Upload the zip without choosing a class."))
    return label


def upload_files(dataset_id: int, user_id: int | None, files: Iterable[tuple[str, BinaryIO]],
                 label_id: int | None = None) -> Upload:
    """Add every (filename, stream): zips (and a large batch of loose images) start background imports,
    the others are added now; a bad file gets an error result and does not stop the others. With
    `label_id` (a class of this dataset) the images land in that class."""
    files = list(files)
    label = _upload_label(dataset_id, label_id, [name for name, _stream in files])
    quotas.check_image_room(quotas.owner_of(dataset_id))  # full already: refuse the request, store nothing
    upload = Upload()
    loose = [(name, stream) for name, stream in files if not is_zip_name(name)]
    for name, stream in files:
        if is_zip_name(name):
            try:
                upload.imports.append(start_zip_import(dataset_id, user_id, name, stream))
            except DomainError as err:
                upload.results.append(FileResult(clean_filename(name), ERROR, err.message))
    if len(loose) > current_app.config["SYNC_UPLOAD_MAX_FILES"]:
        upload.imports.append(start_files_import(dataset_id, user_id, loose, label.name if label else None))
    else:
        upload.results.extend(_add_stream(dataset_id, user_id, name, stream, label) for name, stream in loose)
    return upload
