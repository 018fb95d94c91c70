"""What a dataset still needs before a model can be trained on it, each with how to fix it: shown by the
train page instead of its form, and by the dataset pages' "Train a model" button."""
from __future__ import annotations

from dataclasses import dataclass

from flask import url_for
from flask_babel import gettext as _

from app.blueprints.datasets.services import class_counts
from app.i18n import format_number

# With the default validation and test shares (both above 0) each class needs an image for training,
# one for validation and one for testing (app.ml.data.check_trainable says the same at start).
MIN_PER_CLASS = 3


@dataclass(frozen=True)
class Missing:
    """One thing missing: what (a sentence), the fix as a short verb phrase, and where to do it."""

    text: str
    fix: str
    url: str


def missing_for_training(dataset_id: int) -> list[Missing]:
    """Empty when the dataset can be trained on with the default settings."""
    counts, unlabeled = class_counts(dataset_id)
    total = sum(c["count"] for c in counts) + unlabeled
    label_url = url_for("datasets.images.label_images", dataset_id=dataset_id, filter="unlabeled")
    if total == 0:
        return [Missing(_("This dataset has no images yet."), _("upload images"),
                        url_for("datasets.show_dataset", dataset_id=dataset_id) + "#upload")]
    missing = []
    if len(counts) < 2:
        text = (_("A model learns to tell classes apart, so it needs at least two (e.g. “cats” and “dogs”); this "
                  "dataset has %(count)s.", count=len(counts)) if counts else
                _("A model learns to tell classes apart, so it needs at least two (e.g. “cats” and “dogs”); this "
                  "dataset has none."))
        missing.append(Missing(text, _("add classes"),
                               url_for("datasets.list_classes", dataset_id=dataset_id)))
    labelled = [c for c in counts if c["count"] > 0]
    if len(counts) >= 2 and len(labelled) < 2:
        text = (_("At least two classes need labelled images; 1 has any (%(unlabeled)s images are unlabeled).",
                  unlabeled=format_number(unlabeled)) if labelled else
                _("At least two classes need labelled images; none have any (%(unlabeled)s images are unlabeled).",
                  unlabeled=format_number(unlabeled)))
        missing.append(Missing(text, _("label images"), label_url))
    few = [c for c in labelled if c["count"] < MIN_PER_CLASS]
    if few and len(labelled) >= 2:
        names = ", ".join(f"“{c['label'].name}” ({c['count']})" for c in few)
        missing.append(Missing(_("Each class needs at least %(least)s labelled images (to learn, to check and to "
                                 "test); these have fewer: %(names)s.", least=MIN_PER_CLASS, names=names),
                               _("label more images"), label_url))
    return missing
