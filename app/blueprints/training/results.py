"""Turn a run's stored JSON (metrics, snapshot, options, progress) into what the pages display."""
from __future__ import annotations

from typing import Any
from flask_babel import gettext as _

from app.i18n import N_, format_number, format_short, ngettext, stored_text
from app.models import TrainingRun

OPTION_LABELS = {
    "architecture": N_("Network"), "mode": N_("Training mode"), "epochs": N_("Epochs"), "batch_size": N_("Batch size"),
    "image_size": N_("Image size"), "optimizer": N_("Optimizer"), "lr": N_("Learning rate"),
    "backbone_lr_factor": N_("Backbone learning-rate factor"), "weight_decay": N_("Weight decay"),
    "momentum": N_("Momentum"), "schedule": N_("Learning-rate schedule"), "step_size": N_("Step size"),
    "gamma": N_("Step factor"), "label_smoothing": N_("Label smoothing"), "class_balanced": N_("Balance classes"),
    "early_stopping_patience": N_("Early-stopping patience"), "val_fraction": N_("Validation share"),
    "test_fraction": N_("Test share"), "seed": N_("Random seed"), "random_resized_crop": N_("Random crops"),
    "hflip": N_("Mirror images"), "head": N_("Head"), "dropout": N_("Dropout"), "nesterov": N_("Nesterov momentum"),
    "freeze_bn": N_("Freeze BatchNorm statistics"), "best_metric": N_("Best epoch by"),
}
METRIC_WORDS = {"accuracy": N_("accuracy"), "balanced_accuracy": N_("balanced accuracy"), "macro_f1": N_("macro-F1")}
GALLERY_LIMIT = 48


def metric_word(metric: str | None) -> str:
    """'balanced_accuracy' -> 'balanced accuracy', in the page's language."""
    key = metric or "accuracy"
    return _(METRIC_WORDS[key]) if key in METRIC_WORDS else key


def options_table(run: TrainingRun) -> list[tuple[str, str]]:
    """(label, value) for every option that applied to this run (momentum only with SGD, crops only in
    the image modes, ...), with 'auto' values resolved where the engine would."""
    return [(label, value) for _key, label, value in _option_rows(run)]


def compare_settings(a: TrainingRun, b: TrainingRun) -> list[tuple[str, str, str]]:
    """(label, value for a, value for b) for every option that applied to either run, matched by option:
    two runs of different modes apply different options ("—" where one did not)."""
    rows_a, rows_b = ({key: (label, value) for key, label, value in _option_rows(run)} for run in (a, b))
    return [((rows_a.get(key) or rows_b[key])[0], rows_a.get(key, (None, "—"))[1], rows_b.get(key, (None, "—"))[1])
            for key in OPTION_LABELS if key in rows_a or key in rows_b]


def _option_rows(run: TrainingRun) -> list[tuple[str, str, str]]:
    """(option, label, value) rows of options_table."""
    from app.blueprints.training.names import option_value_name
    from app.ml.options import MODE_DEFAULTS, applied_options

    defaults = MODE_DEFAULTS.get(run.mode, {})
    applied = applied_options({**(run.options or {}), "mode": run.mode})
    rows = []
    for key, label in OPTION_LABELS.items():
        if key not in applied:
            continue
        value = (run.options or {}).get(key)
        if key == "epochs" and _continued_from_epoch(run) is not None:
            value = _more_epochs(value or defaults.get("epochs") or 0, _continued_from_epoch(run))
        elif value is None and key in defaults:
            value = _("%(value)s (default)", value=_fmt(defaults[key]))
        elif value is None and key == "image_size":
            value = _("network default")
        elif value is None and key == "early_stopping_patience":
            value = _("off")
        elif key == "head":
            value = _head_value(run, value)
        elif key == "best_metric":
            value = _("validation %(metric)s", metric=metric_word(value))
        elif key in ("nesterov", "freeze_bn") and value is None:
            value = True  # runs from before the option existed did this
        rows.append((key, _(label), _fmt(option_value_name(key, value))))
    return rows


def _continued_from_epoch(run: TrainingRun) -> int | None:
    """The checkpoint's epoch a "Train more" run went on from (0 when unknown); None for other runs."""
    start = (run.metrics or {}).get("start_epoch")
    if start:
        return int(start)
    if run.continued_from_id is None:
        return None
    return int(((run.continued_from.metrics if run.continued_from else None) or {}).get("best_epoch") or 0)


def _more_epochs(epochs: int, start: int) -> str:
    """A continued run's epochs as what they were: "2 more (epochs 3–4 of 4)", not "2"."""
    if not start:
        return ngettext("%(num)s more epoch", "%(num)s more epochs", epochs)
    return ngettext("%(num)s more (epoch %(first)s of %(last)s)", "%(num)s more (epochs %(first)s–%(last)s of "
                    "%(last)s)", epochs, first=start + 1, last=start + epochs)


def _head_value(run: TrainingRun, value: Any) -> str:
    """'Linear', 'MLP', 'automatic → MLP' once quick mode has chosen; heads play no part in the image modes."""
    from app.blueprints.training.names import head_name

    if run.mode != "quick":
        return head_name("linear")
    chosen = ((run.metrics or {}).get("head_choice") or {}).get("chosen")
    if value == "auto":
        return (_("automatic → %(head)s", head=head_name(chosen, in_text=True)) if chosen
                else _("automatic (best on validation)"))
    return head_name(value or "linear")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return format_short(value)
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


HISTORY_COLUMNS = (  # key, heading, decimals (None: three significant digits, for the learning rates)
    ("epoch", N_("Epoch"), 0), ("train_loss", N_("Train loss"), 4), ("train_acc", N_("Train accuracy"), 4),
    ("val_loss", N_("Val loss"), 4), ("val_acc", N_("Val accuracy"), 4),
    ("val_balanced_acc", N_("Val balanced accuracy"), 4), ("val_macro_f1", N_("Val macro-F1"), 4),
    ("lr_head", N_("LR head"), None), ("lr_backbone", N_("LR backbone"), None),
    ("seconds", N_("Epoch time (s)"), 2), ("data_wait", N_("Data wait (s)"), 2),
)


def history_table(history: list[dict]) -> dict:
    """The per-epoch history as {"headings", "rows"}: text cells written the reader's way (0,7476 in
    pt_BR), columns that no epoch has left out (older runs kept only "lr": it stands for the head's rate)."""
    rows = [{**row, "lr_head": row.get("lr_head", row.get("lr"))} for row in history or []]
    columns = [c for c in HISTORY_COLUMNS if any(row.get(c[0]) is not None for row in rows)]
    return {"headings": [_(c[1]) for c in columns], "keys": [c[0] for c in columns],
            "rows": [[_cell(row.get(key), digits) for key, _heading, digits in columns] for row in rows]}


def _cell(value: Any, digits: int | None) -> str:
    if value is None:
        return ""
    if digits == 0:  # the epoch: plain digits (the template matches it against the best epoch)
        return str(int(value))
    return format_short(float(f"{float(value):.3g}")) if digits is None else format_number(float(value), digits)


def gallery(run: TrainingRun) -> list[dict]:
    """The misclassified test images, most confident mistakes first, with thumbnail URLs."""
    items = []
    for row in ((run.metrics or {}).get("misclassified") or [])[:GALLERY_LIMIT]:
        items.append({**row, "thumb": f"/datasets/{run.dataset_id}/images/{row['image_id']}/thumb"})
    return items


def progress_view(run: TrainingRun) -> dict:
    """Numbers for the live progress bar, with friendly wording for each phase."""
    p = run.progress or {}
    phases = {"listing": N_("Preparing the image list"), "embedding": N_("Computing image features"),
              "preparing": N_("Reading images"),
              "training": N_("Training"), "evaluating": N_("Testing the model"), "exporting": N_("Saving the model"),
              "done": N_("Done")}
    eta = p.get("eta_seconds")
    return {"fraction": max(0.0, min(1.0, float(p.get("fraction") or 0.0))),
            "phase": _(phases.get(p.get("phase"), N_("Starting"))), "epoch": p.get("epoch"),
            "epochs": p.get("epochs"), "step": p.get("step"), "steps": p.get("steps"),
            "shows_speed": reads_images(run.mode, p.get("phase")),
            "images_per_sec": p.get("images_per_sec"), "eta": _duration(eta) if eta is not None else None,
            "loss": p.get("loss"), "train_acc": p.get("train_acc"), "val_acc": p.get("val_acc")}


def curves_caption(run: TrainingRun) -> str | None:
    """Whose curves the charts show when quick mode fitted two heads: the one being fitted while it runs,
    the one kept once it has finished (the other's curves are not kept), so the switch is no surprise."""
    from app.ml.quick import HEAD_NAMES  # "Linear head", "MLP head": in the catalog

    stage = (run.progress or {}).get("stage")
    if run.status == "running":
        return None if not stage else _("Curves of the head being fitted now: %(head)s. Quick mode fits a linear "
                                        "head and an MLP head, then keeps the one that does better on the "
                                        "validation images.", head=_(stage))
    choice = ((run.metrics or {}).get("head_choice") or {}) if run.status == "succeeded" else {}
    if choice.get("automatic") and choice.get("chosen") in HEAD_NAMES:
        return _("Curves of the head that was kept: %(head)s.", head=_(HEAD_NAMES[choice["chosen"]]))
    return None


def reads_images(mode: str | None, phase: str | None) -> bool:
    """Whether images/s means images in this phase: quick mode reads images only while it computes their
    features; its heads then train on those features (tens of thousands a second, which says nothing)."""
    return mode != "quick" or phase == "embedding"


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
            "can_delete": can_delete(user, run), "error_text": failure_text(run),
            "curves_caption": curves_caption(run)}


def failure_text(run: TrainingRun) -> str:
    """Why the run failed, in the reader's language: run.error is English (the API shows it as it is);
    the log's line with the same text carries what translating it needs (lifecycle.failure_line)."""
    if not run.error:
        return ""
    said = next((entry for entry in reversed(run.log or []) if entry.get("message") == run.error), None)
    return stored_text(said) if said and (said.get("key") or said.get("parts")) else stored_text(run.error)


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
            "best_by": metric_word((run.options or {}).get("best_metric"))}


def _times(slow: float, fast: float) -> str:
    ratio = slow / fast
    return f"{format_number(ratio, 0)}×" if ratio >= 9.5 else format_short(round(ratio, 1)) + "×"


def compare_verdict(a: TrainingRun, ra: dict, b: TrainingRun, rb: dict) -> str:
    """One plain sentence to open the compare page: which model is more accurate (on validation images,
    what models are ranked by), by how many points, and which trained faster."""
    if a.status != "succeeded" or b.status != "succeeded":
        waiting = [r.name for r in (a, b) if r.status != "succeeded"]
        if len(waiting) == 1:
            return _("“%(name)s” has no results yet, so there is nothing to compare.", name=waiting[0])
        return _("“%(first)s” and “%(second)s” have no results yet, so there is nothing to compare.",
                 first=waiting[0], second=waiting[1])
    parts = []
    va, vb = ra.get("val_score"), rb.get("val_score")
    if va is not None and vb is not None:
        points = round(abs(va - vb) * 100)
        better = a if va > vb else b
        parts.append(ngettext("“%(name)s” is %(num)s point more accurate on the validation images",
                              "“%(name)s” is %(num)s points more accurate on the validation images", points,
                              name=better.name) if points else
                     _("Both are about as accurate on the validation images"))
    speed = _speed_part(a, ra.get("metrics") or {}, b, rb.get("metrics") or {})
    if speed:
        parts.append(speed)
    return "; ".join(parts) + "." if parts else _("These two models have no scores to compare.")


def _speed_part(a: TrainingRun, ma: dict, b: TrainingRun, mb: dict) -> str | None:
    """Which trained faster; qualified when the faster one skipped the feature pass the other paid for
    (quick mode stores a dataset's image features and reuses them), which is no merit of its settings."""
    sa, sb = ma.get("seconds"), mb.get("seconds")
    if not (sa and sb):
        return None
    if sa < sb:
        faster, fast, slow, reused = a, sa, sb, _reused_features(ma, mb)
    else:
        faster, fast, slow, reused = b, sb, sa, _reused_features(mb, ma)
    if slow / fast < 1.2:
        return _("they took about as long to train")
    if reused:
        return _("“%(name)s” trained %(times)s faster (it reused the image features an earlier run had computed)",
                 name=faster.name, times=_times(slow, fast))
    return _("“%(name)s” trained %(times)s faster", name=faster.name, times=_times(slow, fast))


def _reused_features(faster: dict, slower: dict) -> bool:
    """Whether the faster run read stored image features that the slower one computed itself."""
    mine, theirs = faster.get("embedding_stats") or {}, slower.get("embedding_stats") or {}
    return bool(mine.get("reused")) and (theirs.get("computed") or 0) > (mine.get("computed") or 0)
