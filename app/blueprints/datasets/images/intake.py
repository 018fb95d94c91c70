"""Image intake: decode and check uploaded bytes, store them content-addressed, remove unused files.

Originals are stored byte-for-byte (the trainer re-decodes them with EXIF orientation applied);
a 256px WebP thumbnail is made once, here, at upload.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath

from flask import current_app
from PIL import Image as PILImage
from PIL import ImageOps
from sqlalchemy import select

from app.errors import ValidationError
from app.extensions import db
from app.models import Image
from app.storage import get_storage

# Pillow format name -> the name we store (MPO is how Pillow reads many camera JPEGs).
FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "BMP": "BMP", "GIF": "GIF"}
OPEN_FORMATS = ["JPEG", "PNG", "WEBP", "BMP", "GIF"]  # the JPEG plugin also yields MPO images
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif"}
THUMB_SIZE = 256


class BadImage(ValidationError):
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
    """Open, check the pixel count from the header, then fully decode (catches truncated files)."""
    with warnings.catch_warnings():
        # Pillow's own bomb check warns (an error under pytest) or raises; we check ourselves below.
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            img = PILImage.open(io.BytesIO(data), formats=OPEN_FORMATS)
        except PILImage.DecompressionBombError:
            raise BadImage("The image is too large (too many pixels).") from None
        except Exception:
            raise BadImage("This is not an image we can read (use JPEG, PNG, WebP, BMP or GIF).") from None
        width, height = img.size
        if width * height > max_pixels:
            raise BadImage(
                f"The image is too large: {width}×{height} pixels (the limit is {max_pixels:,} pixels)."
            )
        try:
            img.load()  # GIF: the first frame
        except Exception:
            raise BadImage("The image is damaged or incomplete (it could not be fully read).") from None
    return img


def _thumbnail(img: PILImage.Image) -> bytes:
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "transparency" in img.info or img.mode in ("LA", "PA") else "RGB")
    img = img.copy()
    img.thumbnail((THUMB_SIZE, THUMB_SIZE))
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=80)
    return buf.getvalue()


def check_image(data: bytes, max_pixels: int | None = None) -> CheckedImage:
    """Decode `data` fully and return what we store about it; raise BadImage with a plain reason."""
    if not data:
        raise BadImage("The file is empty (0 bytes).")
    max_pixels = max_pixels or current_app.config["MAX_IMAGE_PIXELS"]
    img = _open_checked(data, max_pixels)
    fmt = FORMATS[img.format]
    try:
        oriented = ImageOps.exif_transpose(img)
        thumb = _thumbnail(oriented)
    except Exception:
        raise BadImage("The image is damaged or incomplete (it could not be fully read).") from None
    return CheckedImage(
        sha256=hashlib.sha256(data).hexdigest(), data=data, format=fmt,
        width=oriented.width, height=oriented.height, thumb=thumb,
    )


def write_files(checked: CheckedImage) -> bool:
    """Store original + thumbnail unless already stored; True when this call created the original."""
    storage = get_storage()
    path, thumb = storage.image_path(checked.sha256), storage.thumb_path(checked.sha256)
    created = not path.exists()
    if created:
        storage.write_atomic(path, checked.data)
    if not thumb.exists():
        storage.write_atomic(thumb, checked.thumb)
    return created


def remove_unreferenced(shas) -> None:
    """Delete stored files of hashes that no image row references any more."""
    shas = set(shas)
    if not shas:
        return
    used = set(db.session.scalars(select(Image.sha256).where(Image.sha256.in_(shas))))
    storage = get_storage()
    for sha in shas - used:
        storage.image_path(sha).unlink(missing_ok=True)
        storage.thumb_path(sha).unlink(missing_ok=True)


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
    """The last path part of a client-supplied file name, trimmed to fit the column."""
    base = PurePosixPath((name or "").replace("\\", "/")).name.strip()
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
