"""Image intake: decode and check uploaded bytes, store them content-addressed, remove unused files.

Originals are stored byte-for-byte (the trainer re-decodes them with EXIF orientation applied);
a 256px WebP thumbnail is made once, here, at upload.
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from flask import current_app
from PIL import Image as PILImage
from PIL import ImageOps
from sqlalchemy import select

from app.i18n import N_, format_number, stored_line, stored_text
from app.ml.pillow_open import open_header
from app.batching import chunked
from app.errors import ValidationError
from app.extensions import db
from app.filestore import image_key, thumb_key
from app.models import Image
from app.storage import Store, get_storage

# Pillow format name -> the name we store (MPO is how Pillow reads many camera JPEGs).
FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "BMP": "BMP", "GIF": "GIF"}
OPEN_FORMATS = ["JPEG", "PNG", "WEBP", "BMP", "GIF"]  # the JPEG plugin also yields MPO images
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif"}
THUMB_SIZE = 256
DAMAGED = N_("The image is damaged or incomplete (it could not be fully read).")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


class ImportRefusal(ValidationError):
    """A refusal an import job keeps: the message says why in the current language (the reader's in a
    request, English in a job); `line` says it again as an app.i18n.stored_line, which the job stores and
    the page shows later in the reader's language."""

    def __init__(self, message: str, line: dict | None = None):
        super().__init__(message)
        self.line = line or {"message": self.message}

    @classmethod
    def because(cls, template: str, **values):
        """From an N_-marked template and its values (value names: app.ml.words)."""
        line = stored_line(template, **values)
        return cls(stored_text(line), line)


class BadImage(ImportRefusal):
    """This file cannot be used as an image (the message says why, in plain words)."""


@dataclass(frozen=True)
class CheckedImage:
    """An uploaded file that decoded fine: its hash, stored format, oriented size and thumbnail."""

    sha256: str
    data: bytes
    format: str
    width: int
    height: int
    thumb: bytes


def _open_checked(data: bytes, max_pixels: int) -> PILImage.Image:
    """Open, check the pixel count from the header, then fully decode (catches truncated files).
    Safe to call from several threads (imports decode on a few)."""
    try:  # Pillow's own bomb check warns (silenced) or raises; we check ourselves below
        img = open_header(io.BytesIO(data), formats=OPEN_FORMATS)  # reads the header only
    except PILImage.DecompressionBombError:
        raise BadImage.because(N_("The image is too large (too many pixels).")) from None
    except Exception:
        raise BadImage.because(N_("This is not an image we can read (use JPEG, PNG, WebP, BMP or GIF).")) from None
    width, height = img.size
    if width * height > max_pixels:
        raise BadImage.because(
            N_("The image is too large: %(width)s×%(height)s pixels (the limit is %(limit)s pixels)."),
            width=width, height=height, limit=max_pixels)
    try:
        img.load()  # GIF: the first frame
    except Exception:
        raise BadImage.because(DAMAGED) from None
    return img


def _thumbnail(img: PILImage.Image) -> bytes:
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "transparency" in img.info or img.mode in ("LA", "PA") else "RGB")
    img = img.copy()
    img.thumbnail((THUMB_SIZE, THUMB_SIZE))
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=80)
    return buf.getvalue()


def human_size(size: int) -> str:
    """1.5 MB, 200 KB: sizes as people read them."""
    return f"{format_number(size / 2**20, 1)} MB" if size >= 2**20 else f"{format_number(size / 1024, 0)} KB"


def too_big(size: int | None, max_bytes: int) -> BadImage:
    """Why a file over MAX_IMAGE_BYTES is refused (size None: only known to be over the limit)."""
    if size is None:
        return BadImage.because(N_("The file is too large: more than that (the limit for one image is %(limit)s)."),
                                limit=human_size(max_bytes))
    return BadImage.because(N_("The file is too large: %(size)s (the limit for one image is %(limit)s)."),
                            size=human_size(size), limit=human_size(max_bytes))


def check_size(size: int, max_bytes: int | None = None) -> None:
    """Refuse a file larger than the largest acceptable image file (MAX_IMAGE_BYTES)."""
    max_bytes = max_bytes or current_app.config["MAX_IMAGE_BYTES"]
    if size > max_bytes:
        raise too_big(size, max_bytes)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_image(data: bytes, max_pixels: int | None = None, sha256: str | None = None) -> CheckedImage:
    """Decode `data` fully and return what we store about it; raise BadImage with a plain reason.
    Pass `sha256` when the caller hashed the bytes already (to skip duplicates before decoding)."""
    if not data:
        raise BadImage.because(N_("The file is empty (0 bytes)."))
    max_pixels = max_pixels or current_app.config["MAX_IMAGE_PIXELS"]
    img = _open_checked(data, max_pixels)
    fmt = FORMATS[img.format]
    try:
        oriented = ImageOps.exif_transpose(img)
        thumb = _thumbnail(oriented)
    except Exception:
        raise BadImage.because(DAMAGED) from None
    return CheckedImage(
        sha256=sha256 or sha256_of(data), data=data, format=fmt,
        width=oriented.width, height=oriented.height, thumb=thumb,
    )


def write_files(checked: CheckedImage, storage: Store | None = None) -> bool:
    """Store original + thumbnail unless already stored; True when this call created the original."""
    storage = storage or get_storage()
    original, thumb = image_key(checked.sha256), thumb_key(checked.sha256)
    created = not storage.exists(original)
    if created:
        storage.write(original, checked.data)
    if created or not storage.exists(thumb):
        storage.write(thumb, checked.thumb)
    return created


def unreferenced(shas) -> set[str]:
    """The hashes among `shas` that no image row references (queried 500 at a time); images deleted
    but still undoable (trashed_images) count as references."""
    from app.blueprints.datasets.images.undo import held_by_trash

    shas = set(shas)
    used: set[str] = set()
    for part in chunked(sorted(shas)):
        used.update(db.session.scalars(select(Image.sha256).where(Image.sha256.in_(part)).distinct()))
    return shas - used - held_by_trash(shas - used)


def remove_unreferenced(shas) -> int:
    """Delete stored files (original, thumbnail) of hashes no image row references any more; returns how
    many hashes were removed. (Cached features are kept per dataset: remove_cached_features.)"""
    gone = unreferenced(shas)
    storage = get_storage()
    for sha in gone:
        storage.delete(image_key(sha))
        storage.delete(thumb_key(sha))
    return len(gone)


def remove_cached_features(dataset_id: int, image_ids=None) -> None:
    """Forget cached backbone features: all of the dataset's (image_ids None: the dataset is gone), or
    those of deleted images (dropped at the store's next compaction; a row is only ever served for
    the same image id and the same file content, so nothing stale is served meanwhile). Cheap: no
    numpy, no torch, safe in a web request."""
    from app.ml import feature_layout

    folder = get_storage().feature_dir(dataset_id)
    if image_ids is None:
        feature_layout.remove_dataset_features(folder)
    else:
        feature_layout.forget_images(folder, image_ids)


def clean_filename(name: str) -> str:
    """The last path part of a client-supplied file name, without control characters (a CR/LF would
    break the download's headers), trimmed to fit the column."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = CONTROL_CHARS.sub("_", base).strip()
    return base[-255:] or "image"


def find_duplicate(dataset_id: int, sha256: str) -> Image | None:
    return db.session.scalar(select(Image).where(Image.dataset_id == dataset_id, Image.sha256 == sha256))


def new_image(dataset_id: int, checked: CheckedImage, filename: str, user_id: int | None,
              label_id: int | None = None, label_source: str | None = None) -> Image:
    """An Image row (not yet committed) for checked bytes."""
    return Image(
        dataset_id=dataset_id, sha256=checked.sha256, filename=clean_filename(filename),
        width=checked.width, height=checked.height, size_bytes=len(checked.data), format=checked.format,
        uploaded_by_id=user_id, label_id=label_id, label_source=label_source if label_id else None,
        labeled_by_id=user_id if label_id else None,
    )
