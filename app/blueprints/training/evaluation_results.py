"""Turn an evaluation's stored counts and metrics into what its page shows (the confusion matrix and the
headline through the run page's own helpers, results.confusion and results.headline)."""
from __future__ import annotations

from flask import url_for

from app.blueprints.training.evaluations import counted
from app.blueprints.training.results import confusion, headline
from app.i18n import ngettext, stored_text
from app.models import Evaluation

MISTAKES_SHOWN = 48


def left_out(counts: dict) -> list[str]:
    """One sentence per reason images were left out, in the reader's language (none: an empty list)."""
    lines = []
    if counts.get("unlabeled"):
        lines.append(ngettext("%(num)s image has no class, so there is nothing to check the model's answer "
                              "against.", "%(num)s images have no class, so there is nothing to check the "
                              "model's answers against.", counts["unlabeled"]))
    if counts.get("unknown_class"):
        names = ", ".join(f"“{name}”" for name in counts.get("unknown_classes") or [])
        lines.append(ngettext("%(num)s image is in a class this model does not know (%(names)s).",
                              "%(num)s images are in classes this model does not know (%(names)s).",
                              counts["unknown_class"], names=names))
    if counts.get("learned"):
        lines.append(ngettext("%(num)s image was used to train this model, so it would say nothing about new "
                              "pictures.", "%(num)s images were used to train this model, so they would say "
                              "nothing about new pictures.", counts["learned"]))
    if counts.get("unreadable"):
        lines.append(ngettext("%(num)s image could not be read.", "%(num)s images could not be read.",
                              counts["unreadable"]))
    return lines


def to_test(counts: dict) -> str:
    """What a queued evaluation will test: an exact number, or "up to" one while the images the model
    learned from are not counted yet (the job counts them when it starts)."""
    num = counts.get("evaluated") or 0
    if counted(counts):
        return ngettext("%(num)s image will be tested.", "%(num)s images will be tested.", num)
    return ngettext("Up to %(num)s image will be tested: any the model was trained on is left out, and counted "
                    "when the evaluation starts.", "Up to %(num)s images will be tested: those the model was "
                    "trained on are left out, and counted when the evaluation starts.", num)


def mistakes(evaluation: Evaluation) -> list[dict]:
    """The most confident mistakes with their thumbnail and the image's own address."""
    rows = (evaluation.misclassified or [])[:MISTAKES_SHOWN]
    return [{**row, "thumb": url_for("datasets.images.image_thumb", dataset_id=evaluation.dataset_id, image_id=row["image_id"]),
             "href": url_for("datasets.images.image_file", dataset_id=evaluation.dataset_id, image_id=row["image_id"])}
            for row in rows]


def evaluation_context(evaluation: Evaluation) -> dict:
    """Everything the evaluation's live section (_evaluation.html) shows."""
    progress = evaluation.progress or {}
    total = progress.get("total") or 0
    fraction = min(1.0, (progress.get("done") or 0) / total) if total else 0.0
    metrics = (evaluation.metrics or {}) if evaluation.status == "succeeded" else {}
    classes = list(evaluation.run.classes or [])
    return {"evaluation": evaluation, "run": evaluation.run, "fraction": fraction, "progress": progress,
            "headline": headline(metrics), "matrix": confusion(metrics, classes), "classes": classes,
            "per_class": metrics.get("per_class") or [], "left_out": left_out(evaluation.counts or {}),
            "to_test": to_test(evaluation.counts or {}) if evaluation.status == "queued" else "",
            "mistakes": mistakes(evaluation) if metrics else [],
            "mistake_count": (metrics.get("count") or 0) - (metrics.get("correct") or 0),
            "error_text": stored_text(evaluation.error) if evaluation.error else ""}
