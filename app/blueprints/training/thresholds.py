"""Confidence thresholds ("not sure" answers) and the test images behind each confusion-matrix cell.

A threshold is chosen on the validation images, never on the test images: the test score is reported
only, so it stays an unbiased estimate of how the model does on new pictures. A succeeded run keeps
one {image_id, true, predicted, confidence} per validation image (class indices) in
run.val_predictions and per test image in run.test_predictions, and the threshold curve computed from
the validation ones once, when training finished, in run.threshold_curve: {"total": n, "split": "val",
"grid": [[answered, correct] for thresholds 0, 0.001, ..., 1]}. Results pages read the curve (a few KB,
whatever the split's size); only a click on a confusion-matrix cell reads the test predictions. Runs
trained before validation predictions were kept have a curve made on the test images (no "split") or
none: the pages say the threshold chart needs a retrain and never show a test-image curve.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Sequence

from flask import url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape

from app.i18n import format_number, format_percent, ngettext
from app.errors import NotFound
from app.models import TrainingRun

STEPS = 100  # the chart has one point per whole percent
GRID = 1000  # the stored curve has one point per 0.1 percent (the finest step the form takes)
CELL_LIMIT = 200  # thumbnails shown for one cell; the count above them is always the full one
W, H = 480, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 24, 14, 30
ANSWERED_COLOR, ACCURACY_COLOR = "#3b5bdb", "#2b8a3e"


def predictions_of(run: TrainingRun) -> list[dict] | None:
    """The per-test-image predictions of a succeeded run (for the confusion-matrix cells only: test
    results are reported, never tuned on), or None when it has none stored."""
    if run.status != "succeeded":
        return None
    return run.test_predictions or None


def val_predictions_of(run: TrainingRun) -> list[dict] | None:
    """The per-validation-image predictions of a succeeded run, or None when it has none stored."""
    if run.status != "succeeded":
        return None
    return run.val_predictions or None


def _confidence(row: dict) -> float:
    # a report made without probabilities has no confidence: such answers are never held back
    return 1.0 if row.get("confidence") is None else float(row["confidence"])


def point_at(predictions: Sequence[dict], threshold: float) -> dict:
    """What a threshold does on the test images: answered (confidence >= threshold), correct among them.

    Same rule as the prediction API, which answers "unknown" when the confidence is below the threshold.
    """
    answered = [row for row in predictions if _confidence(row) >= threshold]
    correct = sum(1 for row in answered if row["true"] == row["predicted"])
    return {"threshold": threshold, "answered": len(answered), "total": len(predictions), "correct": correct,
            "accuracy": correct / len(answered) if answered else None}


def curve_grid(predictions: Sequence[dict], steps: int = GRID, split: str | None = None) -> dict:
    """{"total", "grid": [[answered, correct]]} for thresholds i / steps, i = 0..steps, in O(n log n):
    the same counts point_at gives, for every threshold at once. split names the images it was made
    on ("val"), kept in the curve."""
    every = sorted(_confidence(row) for row in predictions)
    right = sorted(_confidence(row) for row in predictions if row["true"] == row["predicted"])
    grid = []
    for i in range(steps + 1):
        threshold = i / steps
        grid.append([len(every) - bisect_left(every, threshold), len(right) - bisect_left(right, threshold)])
    curve = {"total": len(every), "grid": grid}
    return {**curve, "split": split} if split else curve


def _grid_point(curve: dict, i: int, steps: int) -> dict:
    answered, correct = curve["grid"][i]
    return {"threshold": i / steps, "answered": answered, "total": curve["total"], "correct": correct,
            "accuracy": correct / answered if answered else None}


def grid_point(curve: dict, threshold: float) -> dict | None:
    """point_at read from a stored curve; None when the threshold falls between its points."""
    steps = len(curve["grid"]) - 1
    i = round(threshold * steps)
    return _grid_point(curve, i, steps) if 0 <= i <= steps and i / steps == threshold else None


def coverage_curve(predictions: Sequence[dict], steps: int = STEPS) -> list[dict]:
    """[{threshold, answered, total, accuracy}] for thresholds 0, 1/steps, ..., 1 (accuracy None if 0 answered)."""
    return chart_points(curve_grid(predictions, steps), steps)


def chart_points(curve: dict, steps: int = STEPS) -> list[dict]:
    """The chart's points (every 1/steps) from a stored curve."""
    every = (len(curve["grid"]) - 1) // steps
    points = [_grid_point(curve, i * every, steps * every) for i in range(steps + 1)]
    return [{k: p[k] for k in ("threshold", "answered", "total", "accuracy")} for p in points]


def stored_curve(run: TrainingRun) -> dict | None:
    """The run's threshold curve on its validation images: stored at the end of training (computed here
    only for a run with validation predictions but no such curve). A curve made on the test images by
    an older version is never used: None then, as for a run without validation images."""
    if run.status != "succeeded":
        return None
    curve = run.threshold_curve
    if curve and curve.get("split") == "val":
        return curve
    predictions = val_predictions_of(run)
    return curve_grid(predictions, split="val") if predictions else None


def point_for(run: TrainingRun, curve: dict, threshold: float) -> dict:
    """What `threshold` does on the run's validation images: from the curve, or (between its points)
    counted from the validation predictions."""
    return grid_point(curve, threshold) or point_at(val_predictions_of(run) or [], threshold)


def percent(fraction: float) -> str:
    """0.8 -> '80', 0.995 -> '99.5' (at most one decimal, no trailing zeros)."""
    return f"{fraction * 100:.1f}".rstrip("0").rstrip(".")


def plain_words(point: dict) -> str:
    """One sentence a non-expert can read, e.g. "At 80%: answers 41 of 50 validation images, 98% of
    those correct; says 'not sure' for 9."."""
    threshold = format_percent(point["threshold"], 1, trim=True)
    unsure = point["total"] - point["answered"]
    if not point["answered"]:
        return _("At %(threshold)s: answers none of the %(total)s validation images; says 'not sure' for all "
                 "of them.", threshold=threshold, total=format_number(point["total"]))
    return ngettext("At %(threshold)s: answers %(answered)s of %(num)s validation image, %(correct)s of those "
                    "correct; says 'not sure' for %(unsure)s.",
                    "At %(threshold)s: answers %(answered)s of %(num)s validation images, %(correct)s of those "
                    "correct; says 'not sure' for %(unsure)s.", point["total"], threshold=threshold,
                    answered=format_number(point["answered"]), correct=format_percent(point["accuracy"]),
                    unsure=format_number(unsure))


def saved_message(run: TrainingRun) -> str:
    """What saving the threshold changed, in words."""
    if run.threshold is None:
        return _("Saved: no threshold, so the model always gives its best guess.")
    curve = stored_curve(run)
    effect = f" {plain_words(point_for(run, curve, run.threshold))}" if curve else ""
    return _("Saved: below %(threshold)s sure, the model now answers “not sure”.",
             threshold=format_percent(run.threshold, 1, trim=True)) + effect


def parse_percent(raw: str | None) -> float | None:
    """The form's threshold in percent as a fraction 0..1; '' or 0 mean no threshold (None).

    Raises ValueError when the text is not a number from 0 to 100.
    """
    if raw is None or not str(raw).strip():
        return None
    value = float(str(raw).strip().rstrip("%"))
    if not 0 <= value <= 100:  # NaN fails this too
        raise ValueError(raw)
    return value / 100 if value else None


def _xy(threshold: float, value: float) -> tuple[float, float]:
    return LEFT + threshold * (W - LEFT - RIGHT), TOP + (1 - value) * (H - TOP - BOTTOM)


def curve_svg(curve: Sequence[dict], threshold: float) -> Markup:
    """An SVG of the share of validation images answered and the accuracy on them, against the threshold."""
    label, axis = escape(_("Answered and correct, by confidence threshold")), escape(_("threshold"))
    parts = [f'<svg class="chart threshold-chart" viewBox="0 0 {W} {H}" role="img" data-left="{LEFT}" '
             f'data-width="{W - LEFT - RIGHT}" aria-label="{label}">']
    for i in range(5):
        x0, y = _xy(0, i / 4)
        tick = format_percent(i / 4)  # the locale's way: 25% / 25 %
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
        x, _y = _xy(i / 4, 0)
        parts.append(f'<text class="tick" x="{x:.1f}" y="{H - 12}" text-anchor="middle">{tick}</text>')
    parts.append(f'<text class="axis" x="{W - RIGHT}" y="{H - 1}" text-anchor="end">{axis}</text>')
    answered = [_xy(p["threshold"], p["answered"] / (p["total"] or 1)) for p in curve]
    accuracy = [_xy(p["threshold"], p["accuracy"]) for p in curve if p["accuracy"] is not None]
    lines = ((_("Validation images answered"), ANSWERED_COLOR, answered),
             (_("Correct among those answered"), ACCURACY_COLOR, accuracy))
    for label, color, coords in lines:
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}">'
                         f'<title>{escape(label)}</title></polyline>')
    x, _y = _xy(threshold, 0)
    parts.append(f'<line class="threshold-marker" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{H - BOTTOM}"/></svg>')
    return Markup("".join(parts))


def threshold_context(run: TrainingRun) -> dict:
    """What _threshold.html shows: the validation curve, the saved threshold's effect in words, the
    stored curve for the slider's live sentence (threshold.js); without a validation curve, why not
    ("retrain": trained before validation results were kept; "no_val": no validation images)."""
    curve = stored_curve(run)
    if curve is None:
        has_val = any(counts[1] for counts in (run.snapshot or {}).get("counts") or [])
        return {"has_predictions": False, "why_not": "retrain" if has_val else "no_val"}
    current = run.threshold if run.threshold is not None else 0.0
    return {"has_predictions": True, "curve_svg": curve_svg(chart_points(curve), current), "curve": curve,
            "current_percent": percent(current), "words": plain_words(point_for(run, curve, current))}


def cell_images(run: TrainingRun, true_index: int, predicted_index: int) -> dict:
    """The test images whose true class is true_index and that the model called predicted_index."""
    predictions = predictions_of(run)
    classes = list(run.classes or [])
    if predictions is None or not (0 <= true_index < len(classes) and 0 <= predicted_index < len(classes)):
        raise NotFound(_("There are no test images to show for this cell."))
    rows = [r for r in predictions if r["true"] == true_index and r["predicted"] == predicted_index]
    rows.sort(key=lambda r: -_confidence(r))
    items = [{"image_id": r["image_id"], "confidence": r.get("confidence"),
              "thumb": url_for("datasets.images.image_thumb", dataset_id=run.dataset_id, image_id=r["image_id"])}
             for r in rows[:CELL_LIMIT]]
    return {"true_class": classes[true_index], "predicted_class": classes[predicted_index],
            "count": len(rows), "images": items, "correct": true_index == predicted_index}
