"""Exporting a dataset as a zip in the import layout: one folder per class, unlabeled at the root."""
from __future__ import annotations

import re
import zipfile
from typing import Iterator

from sqlalchemy import select

from app.blueprints.datasets.images.intake import EXTENSIONS
from app.extensions import db
from app.filestore import image_key
from app.models import Image, Label
from app.storage import get_storage

CHUNK = 256 * 1024


class ZipSink:
    """A write-only, non-seekable file for ZipFile; the generator drains it between writes."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _safe(name: str) -> str:
    name = re.sub(r"[\\/:*?\"<>|\x00-\x1f]", "_", name).strip(" .")
    return name or "_"


def export_entries(dataset_id: int) -> list[tuple[str, str]]:
    """(zip entry name, sha256) for every image; names are unique and keep the image's extension."""
    rows = db.session.execute(
        select(Image.id, Image.sha256, Image.filename, Image.format, Label.name)
        .outerjoin(Label, Label.id == Image.label_id).where(Image.dataset_id == dataset_id).order_by(Image.id)
    ).all()
    used, entries = set(), []
    for image_id, sha, filename, fmt, label in rows:
        ext = EXTENSIONS.get(fmt, "")
        stem = _safe(filename.rsplit(".", 1)[0] if "." in filename else filename)
        folder = f"{_safe(label)}/" if label else ""
        name = f"{folder}{stem}{ext}"
        if name.lower() in used:
            name = f"{folder}{stem}-{image_id}{ext}"
        used.add(name.lower())
        entries.append((name, sha))
    return entries


def zip_filename(dataset_name: str) -> str:
    """The download's file name: the dataset name, anything but letters, digits, '-' and '_' replaced."""
    return ("".join(c if c.isalnum() or c in "-_" else "_" for c in dataset_name) or "dataset") + ".zip"


def export_zip(dataset_id: int) -> Iterator[bytes]:
    """The zip as an iterator of chunks, reading one stored file at a time (never all in memory)."""
    return _stream(export_entries(dataset_id), get_storage())


def _stream(entries: list[tuple[str, str]], storage) -> Iterator[bytes]:
    sink = ZipSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, sha in entries:
            with storage.open(image_key(sha)) as src, zf.open(name, "w") as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                    yield sink.drain()
            yield sink.drain()
    yield sink.drain()
