"""The images of a dataset: the labeling grid (pages, filters), one image, bulk label / unlabel / delete."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update

from app.blueprints.datasets.classes import get_label
from app.blueprints.datasets.images.intake import remove_cached_features, remove_unreferenced
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.models import Image

PER_PAGE = 48
MAX_SELECTION = 5000


@dataclass
class ImagePage:
    images: list[Image]
    page: int
    pages: int
    total: int
    filter: str  # 'all', 'unlabeled' or a label id as text


def image_page(dataset_id: int, filter_: str = "all", page: int = 1, per_page: int = PER_PAGE) -> ImagePage:
    """One page of a dataset's images, newest first, filtered by class id / 'unlabeled' / 'all'."""
    query = select(Image).where(Image.dataset_id == dataset_id)
    if filter_ == "unlabeled":
        query = query.where(Image.label_id.is_(None))
    elif filter_.isdigit():
        query = query.where(Image.label_id == get_label(dataset_id, int(filter_)).id)
    else:
        filter_ = "all"
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    images = list(db.session.scalars(
        query.order_by(Image.id.desc()).offset((page - 1) * per_page).limit(per_page)))
    return ImagePage(images, page, pages, total, filter_)


def get_image(dataset_id: int, image_id: int) -> Image:
    """An image of this dataset (404 for any other)."""
    image = db.session.get(Image, image_id)
    if image is None or image.dataset_id != dataset_id:
        raise NotFound("This image does not exist in this dataset.")
    return image


def parse_ids(values) -> list[int]:
    """Image ids from form values; rejects junk and oversized selections."""
    try:
        ids = sorted({int(v) for v in values})
    except (TypeError, ValueError):
        raise ValidationError("The selection was not understood. Reload the page and try again.") from None
    if not ids:
        raise ValidationError("Select one or more images first.")
    if len(ids) > MAX_SELECTION:
        raise ValidationError(f"Select at most {MAX_SELECTION} images at once.")
    return ids


def _check_owned(dataset_id: int, ids: list[int]) -> None:
    found = db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset_id, Image.id.in_(ids)))
    if found != len(ids):
        raise NotFound("Some selected images are not in this dataset. Reload the page and try again.")


def set_labels(dataset_id: int, image_ids: list[int], label_id: int | None, user_id: int) -> int:
    """Give the images class `label_id` (None clears it) in one statement; all must belong to the dataset."""
    _check_owned(dataset_id, image_ids)
    if label_id is None:
        values = {"label_id": None, "label_source": None, "labeled_by_id": None, "label_model_id": None}
    else:
        values = {"label_id": get_label(dataset_id, label_id).id, "label_source": "user",
                  "labeled_by_id": user_id, "label_model_id": None}
    db.session.execute(update(Image).where(Image.dataset_id == dataset_id, Image.id.in_(image_ids)).values(**values))
    db.session.commit()
    return len(image_ids)


def delete_images(dataset_id: int, image_ids: list[int]) -> int:
    """Delete images (rows, then files no other dataset uses)."""
    _check_owned(dataset_id, image_ids)
    shas = set(db.session.scalars(select(Image.sha256).where(Image.id.in_(image_ids))))
    db.session.execute(delete(Image).where(Image.dataset_id == dataset_id, Image.id.in_(image_ids)))
    db.session.commit()
    remove_unreferenced(shas)
    remove_cached_features(dataset_id, image_ids)
    return len(image_ids)
