"""What a dataset still needs before a model can be trained on it, each with how to fix it: shown by the
train page instead of its form, by the dataset overview and its "Train a model" button, and by the API's
dataset answer. The rule itself (app.ml.trainable.training_gaps) is the one the training job applies."""
from __future__ import annotations

from dataclasses import dataclass

from flask import url_for
from flask_babel import gettext as _

from app.blueprints.datasets.services import class_counts
from app.i18n import format_number
from app.ml.trainable import min_images_per_class, training_gaps

# With the default validation and test shares each class needs an image for training, one for
# validation and one for testing.
MIN_PER_CLASS = min_images_per_class()


@dataclass(frozen=True)
class Missing:
    """One thing missing: what (a sentence), the fix as a short verb phrase, and where to do it."""

    text: str
    fix: str
    url: str


def missing_for_training(dataset_id: int, counted: tuple | None = None) -> list[Missing]:
    """Empty when the dataset can be trained on with the default settings. counted: class_counts's answer
    when the caller has it."""
    counts, unlabeled = counted or class_counts(dataset_id)
    if sum(c["count"] for c in counts) + unlabeled == 0:
        return [Missing(_("This dataset has no images yet."), _("upload images"),
                        url_for("datasets.show_dataset", dataset_id=dataset_id) + "#upload")]
    return [_missing(gap, dataset_id, unlabeled)
            for gap in training_gaps({c["label"].name: c["count"] for c in counts})]


def _missing(gap, dataset_id: int, unlabeled: int) -> Missing:
    label_url = url_for("datasets.images.label_images", dataset_id=dataset_id, filter="unlabeled")
    if gap.kind == "classes":
        text = (_("A model learns to tell classes apart, so it needs at least two (e.g. “cats” and “dogs”); this "
                  "dataset has %(count)s.", count=gap.found) if gap.found else
                _("A model learns to tell classes apart, so it needs at least two (e.g. “cats” and “dogs”); this "
                  "dataset has none."))
        return Missing(text, _("add classes"), url_for("datasets.list_classes", dataset_id=dataset_id))
    if gap.kind == "labeled":
        text = (_("At least two classes need labeled images; 1 has any (%(unlabeled)s images are unlabeled).",
                  unlabeled=format_number(unlabeled)) if gap.found else
                _("At least two classes need labeled images; none have any (%(unlabeled)s images are unlabeled).",
                  unlabeled=format_number(unlabeled)))
        return Missing(text, _("label images"), label_url)
    names = ", ".join(f"“{name}” ({format_number(count)})" for name, count in gap.few)
    return Missing(_("Each class needs at least %(least)s labeled images (to learn, to check and to test); "
                     "these have fewer: %(names)s.", least=gap.needed, names=names),
                   _("label more images"), label_url)
