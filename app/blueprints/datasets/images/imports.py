"""Importing a .zip laid out folder-per-class.

Layout rules (also shown on the upload page):
- `cats/x.jpg` -> class 'cats' (created when missing; matched ignoring letter case).
- Deeper folders count for their top-level folder: `cats/indoor/x.jpg` -> 'cats'.
- Files at the root of the zip are imported unlabeled.
- If *everything* sits inside one wrapping folder with class folders beneath it
  (`pets/cats/x.jpg`, `pets/dogs/y.jpg`, as made by "compress folder"), the wrapper is ignored.
- `__MACOSX/` and hidden files (`.DS_Store`, `._x.jpg`) are ignored; entries with `../` or absolute
  paths are skipped with a message. Nothing is ever written outside STORAGE_DIR: entry names are only
  used as labels and file names, never as paths.
- Too many entries (MAX_ZIP_FILES) or too many uncompressed bytes (MAX_ZIP_UNCOMPRESSED, checked on the
  declared sizes and again on the bytes actually read) rejects the whole zip: nothing is imported.

The zip is imported in one transaction: either every good entry is added or (on rejection) none.
"""
from __future__ import annotations

import re
import zipfile
from typing import BinaryIO

from flask import current_app

from app.blueprints.datasets.classes import get_or_create_label
from app.blueprints.datasets.images.intake import (
    BadImage, check_image, find_duplicate, new_image, remove_unreferenced, write_files,
)
from app.blueprints.datasets.images.results import ADDED, DUPLICATE, ERROR, FileResult
from app.errors import ValidationError
from app.extensions import db

CHUNK = 1024 * 1024


class ZipRejected(ValidationError):
    """The whole zip is refused (not a zip, or a zip bomb)."""


def entry_parts(name: str) -> list[str] | None:
    """Path parts of an entry name, or None when it is unsafe (absolute or climbing out with '..')."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return parts


def _ignored(parts: list[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _plan(zf: zipfile.ZipFile) -> tuple[list[tuple[zipfile.ZipInfo, list[str]]], list[FileResult]]:
    """Entries to import (with their path parts) and skip messages; enforces the zip-bomb limits."""
    infos = zf.infolist()
    max_files, max_bytes = current_app.config["MAX_ZIP_FILES"], current_app.config["MAX_ZIP_UNCOMPRESSED"]
    if len(infos) > max_files:
        raise ZipRejected(f"The zip has {len(infos):,} entries; the limit is {max_files:,}. Nothing was imported.")
    if sum(i.file_size for i in infos) > max_bytes:
        raise ZipRejected(
            f"The zip unpacks to more than {max_bytes:,} bytes, which is over the limit. Nothing was imported."
        )
    entries, skipped = [], []
    for info in infos:
        if info.is_dir():
            continue
        parts = entry_parts(info.filename)
        if parts is None:
            skipped.append(FileResult(info.filename, ERROR, "Skipped: unsafe path (absolute or with '..')."))
        elif parts and not _ignored(parts):
            entries.append((info, parts))
    if entries and all(len(p) >= 3 for _, p in entries) and len({p[0] for _, p in entries}) == 1:
        entries = [(info, parts[1:]) for info, parts in entries]
    return entries, skipped


class _Budget:
    """Counts the bytes actually decompressed, whatever the entries declare."""

    def __init__(self, limit: int):
        self.left = limit

    def read(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
        chunks = []
        with zf.open(info) as fh:
            while chunk := fh.read(min(CHUNK, self.left + 1)):
                self.left -= len(chunk)
                if self.left < 0:
                    raise ZipRejected("The zip unpacks to more bytes than allowed. Nothing was imported.")
                chunks.append(chunk)
        return b"".join(chunks)


def _import_entry(ctx: dict, info: zipfile.ZipInfo, parts: list[str]) -> FileResult:
    name = "/".join(parts)
    try:
        data = ctx["budget"].read(ctx["zf"], info)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
        return FileResult(name, ERROR, "Skipped: this entry of the zip is damaged or encrypted.")
    try:
        checked = check_image(data)
    except BadImage as err:
        return FileResult(name, ERROR, err.message)
    if checked.sha256 in ctx["seen"] or find_duplicate(ctx["dataset_id"], checked.sha256):
        return FileResult(name, DUPLICATE, "Already in this dataset (an identical file); skipped.")
    ctx["seen"].add(checked.sha256)
    if write_files(checked):
        ctx["written"].append(checked.sha256)
    label = get_or_create_label(ctx["dataset_id"], parts[0]) if len(parts) >= 2 else None
    image = new_image(ctx["dataset_id"], checked, parts[-1], ctx["user_id"],
                      label.id if label else None, "import")
    db.session.add(image)
    return FileResult(name, ADDED, "Added.", label=label.name if label else None)


def import_zip(dataset_id: int, user_id: int | None, stream: BinaryIO) -> list[FileResult]:
    """Import a folder-per-class zip (see module doc); raise ZipRejected when refused as a whole."""
    try:
        zf = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise ZipRejected("This .zip file is damaged or not a zip file.") from None
    ctx = {"zf": zf, "dataset_id": dataset_id, "user_id": user_id, "seen": set(), "written": [],
           "budget": _Budget(current_app.config["MAX_ZIP_UNCOMPRESSED"])}
    with zf:
        entries, results = _plan(zf)
        try:
            for info, parts in entries:
                results.append(_import_entry(ctx, info, parts))
            db.session.commit()
        except BaseException:
            db.session.rollback()
            remove_unreferenced(ctx["written"])
            raise
    if not entries and not results:
        results.append(FileResult("(zip)", ERROR, "The zip contains no images."))
    return results
