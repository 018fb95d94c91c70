"""Datasets: create/edit/delete, the summary with plain-language advice, and training samples.

Reusable by other features:
- `labelled_samples(dataset_id)` -> [(image_id, sha256, label_name)] for training.
- `image_file_path(sha256)` -> the stored original's path.
- `dataset_warnings(counts, unlabeled)` -> plain-language advice (what blocks training: readiness.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from flask_babel import gettext as _

from app import quotas
from app.access import visible_datasets_query
from app.blueprints.datasets.images.imports import dataset_imports
from app.i18n import format_number, ngettext
from app.errors import ValidationError
from app.extensions import db
from app.ml.trainable import min_images_per_class
from app.models import Dataset, Image, Label, User
from app.filestore import image_key
from app.storage import get_storage

RECOMMENDED_PER_CLASS = 10  # advice only: the minimum is app.ml.trainable.min_images_per_class()
IMBALANCE_RATIO = 3


def list_datasets_for(user: User) -> list[dict]:
    """Datasets the user owns or that are shared with them, newest first, with image counts."""
    datasets = list(db.session.scalars(visible_datasets_query(user).order_by(Dataset.updated_at.desc())))
    ids = [d.id for d in datasets]
    counts = dict(db.session.execute(
        select(Image.dataset_id, func.count(Image.id)).where(Image.dataset_id.in_(ids)).group_by(Image.dataset_id)
    ).all()) if ids else {}
    return [{"dataset": d, "images": counts.get(d.id, 0), "mine": d.owner_id == user.id} for d in datasets]


def _clean(name: str, description: str) -> tuple[str, str]:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError(_("Give the dataset a name."))
    if len(name) > 120:
        raise ValidationError(_("Dataset names can be at most 120 characters long."))
    return name, (description or "").strip()


def create_dataset(owner_id: int, name: str, description: str = "") -> Dataset:
    """A new empty dataset owned by `owner_id` (within the owner's dataset quota)."""
    name, description = _clean(name, description)
    quotas.check_can_create_dataset(owner_id)
    dataset = Dataset(owner_id=owner_id, name=name, description=description)
    db.session.add(dataset)
    db.session.commit()
    return dataset


def update_dataset(dataset: Dataset, name: str, description: str) -> Dataset:
    """Rename / re-describe a dataset."""
    dataset.name, dataset.description = _clean(name, description)
    db.session.commit()
    return dataset


@dataclass
class Summary:
    """Images per class, unlabeled count and warnings for one dataset."""

    classes: list[dict] = field(default_factory=list)  # {"label": Label, "count": int}
    unlabeled: int = 0
    total: int = 0
    shared_elsewhere: int = 0
    warnings: list[str] = field(default_factory=list)


def class_counts(dataset_id: int) -> tuple[list[dict], int]:
    """([{"label": Label, "count": n}, ...] in class order, unlabeled count)."""
    rows = dict(db.session.execute(
        select(Image.label_id, func.count(Image.id)).where(Image.dataset_id == dataset_id).group_by(Image.label_id)
    ).all())
    labels = db.session.scalars(
        select(Label).where(Label.dataset_id == dataset_id).order_by(Label.position, Label.id))
    return [{"label": lab, "count": rows.get(lab.id, 0)} for lab in labels], rows.get(None, 0)


def dataset_summary(dataset: Dataset) -> Summary:
    """Counts, cross-dataset duplicates (identical files also in the owner's other datasets), warnings."""
    classes, unlabeled = class_counts(dataset.id)
    others = select(Image.sha256).join(Dataset, Dataset.id == Image.dataset_id).where(
        Dataset.owner_id == dataset.owner_id, Image.dataset_id != dataset.id)
    shared = db.session.scalar(select(func.count(Image.id)).where(
        Image.dataset_id == dataset.id, Image.sha256.in_(others))) or 0
    counts = {c["label"].name: c["count"] for c in classes}
    return Summary(classes=classes, unlabeled=unlabeled, total=sum(counts.values()) + unlabeled,
                   shared_elsewhere=shared, warnings=dataset_warnings(counts, unlabeled))


def dataset_overview(dataset: Dataset) -> dict:
    """What the dataset page shows: the summary and the imports running or recently ended."""
    return {"summary": dataset_summary(dataset), "imports": dataset_imports(dataset.id)}


def dataset_warnings(counts: dict[str, int], unlabeled: int) -> list[str]:
    """Plain-language advice on a dataset, given images per class name and the unlabeled count. What stops
    training altogether is not here: readiness.missing_for_training says that (the same everywhere)."""
    warnings = []
    used = {name: n for name, n in counts.items() if n > 0}
    least = min_images_per_class()
    for name, n in counts.items():
        if n == 0:
            warnings.append(_("Class “%(name)s” has no images yet.", name=name))
        elif least <= n < RECOMMENDED_PER_CLASS:
            warnings.append(ngettext("Class “%(name)s” has %(num)s image: enough to train, but %(better)s or more "
                                     "give a more reliable model.",
                                     "Class “%(name)s” has %(num)s images: enough to train, but %(better)s or more "
                                     "give a more reliable model.",
                                     n, name=name, better=RECOMMENDED_PER_CLASS))
    if len(used) >= 2:
        big, small = max(used, key=used.get), min(used, key=used.get)
        ratio = used[big] / used[small]
        if ratio >= IMBALANCE_RATIO:
            warnings.append(_("Classes are imbalanced: “%(big)s” has %(ratio)sx more images than "
                              "“%(small)s”. Try to give every class a similar number of images.",
                              big=big, small=small, ratio=format_number(ratio, 0)))
    if unlabeled:
        warnings.append(ngettext("%(num)s image is unlabeled; unlabeled images are not used for training.",
                                 "%(num)s images are unlabeled; unlabeled images are not used for training.",
                                 unlabeled))
    return warnings


def labelled_samples(dataset_id: int) -> list[tuple[int, str, str]]:
    """Every labelled image as (image_id, sha256, class name), in class order then upload order.

    The file of a sample is `image_file_path(sha256)` (original bytes; apply EXIF orientation when decoding).
    """
    rows = db.session.execute(
        select(Image.id, Image.sha256, Label.name).join(Label, Label.id == Image.label_id)
        .where(Image.dataset_id == dataset_id).order_by(Label.position, Label.id, Image.id)
    ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def image_file_path(sha256: str) -> Path:
    """Where the original bytes of an image are stored."""
    return get_storage().local_path(image_key(sha256))
