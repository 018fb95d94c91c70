"""What a dataset still needs before a model can be trained on it, each with how to fix it: shown by the
train page instead of its form, and by the dataset pages' "Train a model" button."""
from __future__ import annotations

from dataclasses import dataclass

from flask import url_for

from app.blueprints.datasets.services import class_counts

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
        return [Missing("This dataset has no images yet.", "upload images",
                        url_for("datasets.show_dataset", dataset_id=dataset_id) + "#upload")]
    missing = []
    if len(counts) < 2:
        missing.append(Missing(f"A model learns to tell classes apart, so it needs at least two (e.g. “cats” and "
                               f"“dogs”); this dataset has {len(counts) or 'none'}.", "add classes",
                               url_for("datasets.list_classes", dataset_id=dataset_id)))
    labelled = [c for c in counts if c["count"] > 0]
    if len(counts) >= 2 and len(labelled) < 2:
        missing.append(Missing(f"At least two classes need labelled images; {len(labelled) or 'none'} "
                               f"{'has' if len(labelled) == 1 else 'have'} any ({unlabeled} images are unlabeled).",
                               "label images", label_url))
    few = [c for c in labelled if c["count"] < MIN_PER_CLASS]
    if few and len(labelled) >= 2:
        names = ", ".join(f"“{c['label'].name}” ({c['count']})" for c in few)
        missing.append(Missing(f"Each class needs at least {MIN_PER_CLASS} labelled images (to learn, to check and "
                               f"to test); these have fewer: {names}.", "label more images", label_url))
    return missing
