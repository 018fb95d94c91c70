"""Turn a run's stored JSON (metrics, snapshot, options, progress) into what the pages display."""
from __future__ import annotations

from typing import Any

from app.models import TrainingRun

OPTION_LABELS = {
    "architecture": "Network", "mode": "Training mode", "epochs": "Epochs", "batch_size": "Batch size",
    "image_size": "Image size", "optimizer": "Optimizer", "lr": "Learning rate",
    "backbone_lr_factor": "Backbone learning-rate factor", "weight_decay": "Weight decay",
    "momentum": "Momentum", "schedule": "Learning-rate schedule", "step_size": "Step size",
    "gamma": "Step factor", "label_smoothing": "Label smoothing", "class_balanced": "Balance classes",
    "early_stopping_patience": "Early-stopping patience", "val_fraction": "Validation share",
    "test_fraction": "Test share", "seed": "Random seed", "random_resized_crop": "Random crops",
    "hflip": "Mirror images", "head": "Head", "dropout": "Dropout", "nesterov": "Nesterov momentum",
    "freeze_bn": "Freeze BatchNorm statistics", "best_metric": "Best epoch by",
}
METRIC_WORDS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_f1": "macro-F1"}
GALLERY_LIMIT = 48


def options_table(run: TrainingRun) -> list[tuple[str, str]]:
    """(label, value) for every option that applied to this run (momentum only with SGD, crops only in
    the image modes, ...), with 'auto' values resolved where the engine would."""
    from app.blueprints.training.names import option_value_name
    from app.ml.options import MODE_DEFAULTS, applied_options

    defaults = MODE_DEFAULTS.get(run.mode, {})
    applied = applied_options({**(run.options or {}), "mode": run.mode})
    rows = []
    for key, label in OPTION_LABELS.items():
        if key not in applied:
            continue
        value = (run.options or {}).get(key)
        if value is None and key in defaults:
            value = f"{defaults[key]} (default)"
        elif value is None and key == "image_size":
            value = "network default"
        elif value is None and key == "early_stopping_patience":
            value = "off"
        elif key == "head":
            value = _head_value(run, value)
        elif key == "best_metric":
            value = f"validation {METRIC_WORDS.get(value or 'accuracy', value)}"
        elif key in ("nesterov", "freeze_bn") and value is None:
            value = True  # runs from before the option existed did this
        rows.append((label, _fmt(option_value_name(key, value))))
    return rows


def _head_value(run: TrainingRun, value: Any) -> str:
    """'auto → MLP' once quick mode has chosen; heads play no part in the image modes."""
    if run.mode != "quick":
        return "linear"
    chosen = ((run.metrics or {}).get("head_choice") or {}).get("chosen")
    if value == "auto":
        return f"automatic → {chosen}" if chosen else "automatic (best on validation)"
    return str(value or "linear")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def split_summary(run: TrainingRun) -> dict:
    """Images per class and per split part, from the small summary frozen with the run."""
    snap = run.snapshot or {}
    classes = snap.get("classes") or run.classes or []
    counts = snap.get("counts") or []
    rows = [{"class": name, "train": c[0], "val": c[1], "test": c[2], "total": sum(c)}
            for name, c in zip(classes, counts)]
    sizes = {part: sum(c[i] for c in counts) for i, part in enumerate(("train", "val", "test"))}
    return {"rows": rows, "sizes": sizes, "total": snap.get("total", sum(sizes.values())),
            "taken_at": snap.get("taken_at")}


def confusion(metrics: dict, classes: list[str]) -> list[dict]:
    """Rows of cells {count, share of the row, correct?} for the heatmap (rows = true class)."""
    matrix = metrics.get("confusion_matrix") or []
    rows = []
    for i, counts in enumerate(matrix):
        total = sum(counts) or 1
        cells = [{"count": c, "share": c / total, "correct": i == j} for j, c in enumerate(counts)]
        rows.append({"class": classes[i] if i < len(classes) else str(i), "cells": cells, "total": sum(counts)})
    return rows


def headline(metrics: dict) -> dict | None:
    """Test accuracy, its plain reading (correct on N of M test images) and its 95% confidence interval
    (Wilson), which says how far the score can be from the truth on so few images."""
    from app.ml.intervals import wilson_interval

    matrix = metrics.get("confusion_matrix")
    if metrics.get("accuracy") is None or not matrix:
        return None
    total = sum(sum(row) for row in matrix)
    correct = sum(matrix[i][i] for i in range(len(matrix)))
    low, high = wilson_interval(correct, total) or (None, None)
    return {"accuracy": metrics["accuracy"], "correct": correct, "total": total, "ci_low": low, "ci_high": high}


def validation_score(run: TrainingRun) -> float | None:
    """The accuracy a succeeded run's final model has on its validation images: what models are ranked
    by (the test score is only reported). None without validation images."""
    metrics = run.metrics or {}
    if run.status != "succeeded":
        return None
    validation = metrics.get("validation") or {}
    value = validation.get("accuracy", metrics.get("best_val_acc"))
    return float(value) if value is not None else None


HISTORY_COLUMNS = (  # key, heading, format
    ("epoch", "Epoch", "{:d}"), ("train_loss", "Train loss", "{:.4f}"), ("train_acc", "Train accuracy", "{:.4f}"),
    ("val_loss", "Val loss", "{:.4f}"), ("val_acc", "Val accuracy", "{:.4f}"),
    ("val_balanced_acc", "Val balanced accuracy", "{:.4f}"), ("val_macro_f1", "Val macro-F1", "{:.4f}"),
    ("lr_head", "LR head", "{:.3g}"), ("lr_backbone", "LR backbone", "{:.3g}"),
    ("seconds", "Epoch time (s)", "{:.2f}"), ("data_wait", "Data wait (s)", "{:.2f}"),
)


def history_table(history: list[dict]) -> dict:
    """The per-epoch history as {"headings", "rows"}: text cells, columns that no epoch has left out
    (older runs kept only "lr": it stands for the head's rate)."""
    rows = [{**row, "lr_head": row.get("lr_head", row.get("lr"))} for row in history or []]
    columns = [c for c in HISTORY_COLUMNS if any(row.get(c[0]) is not None for row in rows)]
    return {"headings": [c[1] for c in columns], "keys": [c[0] for c in columns],
            "rows": [[_cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows]}


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return ""
    return fmt.format(int(value)) if fmt == "{:d}" else fmt.format(float(value))


def gallery(run: TrainingRun) -> list[dict]:
    """The misclassified test images, most confident mistakes first, with thumbnail URLs."""
    items = []
    for row in ((run.metrics or {}).get("misclassified") or [])[:GALLERY_LIMIT]:
        items.append({**row, "thumb": f"/datasets/{run.dataset_id}/images/{row['image_id']}/thumb"})
    return items


def progress_view(run: TrainingRun) -> dict:
    """Numbers for the live progress bar, with friendly wording for each phase."""
    p = run.progress or {}
    phases = {"embedding": "Computing image features", "preparing": "Reading images",
              "training": "Training", "evaluating": "Testing the model", "exporting": "Saving the model",
              "done": "Done"}
    eta = p.get("eta_seconds")
    return {"fraction": max(0.0, min(1.0, float(p.get("fraction") or 0.0))),
            "phase": phases.get(p.get("phase"), "Starting"), "epoch": p.get("epoch"),
            "epochs": p.get("epochs"), "step": p.get("step"), "steps": p.get("steps"),
            "images_per_sec": p.get("images_per_sec"), "eta": _duration(eta) if eta is not None else None,
            "loss": p.get("loss"), "train_acc": p.get("train_acc"), "val_acc": p.get("val_acc")}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def live_context(run: TrainingRun, user) -> dict:
    """Everything the live part of the run page (_run_progress.html) shows."""
    from app.blueprints.training.charts import accuracy_chart, loss_chart
    from app.blueprints.training.services import can_delete
    from app.blueprints.training.lifecycle import queue_position

    try:
        position = queue_position(run)
    except Exception:  # Redis briefly away: the page still renders, without the position
        position = None
    history = run.history or []
    return {"pv": progress_view(run), "position": position, "loss_svg": loss_chart(history),
            "acc_svg": accuracy_chart(history), "log_lines": (run.log or [])[-100:],
            "can_delete": can_delete(user, run)}


def results_context(run: TrainingRun) -> dict:
    """Everything the results section shows; empty values until the run has succeeded."""
    from app.blueprints.training.thresholds import threshold_context

    metrics = (run.metrics or {}) if run.status == "succeeded" else {}
    classes = list(run.classes or (run.snapshot or {}).get("classes") or [])
    th = threshold_context(run)
    # a confusion-matrix cell lists its test images from the stored test predictions
    cells = bool(metrics.get("test_predictions_kept")) or bool(metrics and run.threshold_curve)
    return {"headline": headline(metrics), "matrix": confusion(metrics, classes), "classes": classes,
            "per_class": metrics.get("per_class") or [], "gallery": gallery(run) if metrics else [],
            "options_rows": options_table(run), "split": split_summary(run), "metrics": metrics,
            "th": th, "cells_clickable": cells, "history": history_table(run.history) if metrics else None,
            "val_score": validation_score(run),
            "best_by": METRIC_WORDS.get((run.options or {}).get("best_metric") or "accuracy")}


def _times(slow: float, fast: float) -> str:
    ratio = slow / fast
    return f"{ratio:.0f}×" if ratio >= 9.5 else f"{ratio:.1f}".rstrip("0").rstrip(".") + "×"


def compare_verdict(a: TrainingRun, ra: dict, b: TrainingRun, rb: dict) -> str:
    """One plain sentence to open the compare page: which model is more accurate (on validation images,
    what models are ranked by), by how many points, and which trained faster."""
    if a.status != "succeeded" or b.status != "succeeded":
        waiting = [f"“{r.name}”" for r in (a, b) if r.status != "succeeded"]
        return f"{' and '.join(waiting)} {'has' if len(waiting) == 1 else 'have'} no results yet, so there is nothing to compare."
    parts = []
    va, vb = ra.get("val_score"), rb.get("val_score")
    if va is not None and vb is not None:
        points = round(abs(va - vb) * 100)
        better = a if va > vb else b
        parts.append(f"“{better.name}” is {points} point{'s' if points != 1 else ''} more accurate on the validation "
                     f"images" if points else "Both are about as accurate on the validation images")
    sa, sb = (ra.get("metrics") or {}).get("seconds"), (rb.get("metrics") or {}).get("seconds")
    if sa and sb:
        faster, slow, fast = (a, sb, sa) if sa < sb else (b, sa, sb)
        parts.append(f"“{faster.name}” trained {_times(slow, fast)} faster" if slow / fast >= 1.2
                     else "they took about as long to train")
    return "; ".join(parts) + "." if parts else "These two models have no scores to compare."
