"""Classification metrics from true labels, predictions and probabilities (plain lists out)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .intervals import wilson_interval


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> list[list[int]]:
    """Counts [true][predicted]."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        matrix[int(t), int(p)] += 1
    return matrix.tolist()


def _safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def per_class_metrics(matrix: list[list[int]], classes: Sequence[str]) -> list[dict]:
    """precision/recall/F1/support per class; 0.0 where undefined (no predictions / no support)."""
    m = np.asarray(matrix, dtype=np.int64)
    rows = []
    for c, name in enumerate(classes):
        tp = m[c, c]
        precision = _safe_div(tp, m[:, c].sum())
        recall = _safe_div(tp, m[c, :].sum())
        f1 = _safe_div(2 * precision * recall, precision + recall)
        rows.append({"class": name, "index": c, "precision": precision, "recall": recall, "f1": f1,
                     "support": int(m[c, :].sum())})
    return rows


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], probs: np.ndarray | None,
                          classes: Sequence[str], image_ids: Sequence[int] | None = None,
                          max_misclassified: int = 500) -> dict:
    """accuracy (with its 95% Wilson interval), balanced_accuracy, confusion_matrix, per_class, macro_f1,
    misclassified [{image_id, true, predicted,
    confidence}] (most confident mistakes first), count, and predictions [{image_id, true, predicted,
    confidence}] for every test image in input order (true/predicted are class indices here)."""
    y_true = [int(v) for v in y_true]
    y_pred = [int(v) for v in y_pred]
    matrix = confusion_matrix(y_true, y_pred, len(classes))
    per_class = per_class_metrics(matrix, classes)
    correct = sum(t == p for t, p in zip(y_true, y_pred))
    wrong, predictions = [], []
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        confidence = float(probs[i, p]) if probs is not None else None
        image_id = int(image_ids[i]) if image_ids is not None else i
        predictions.append({"image_id": image_id, "true": t, "predicted": p, "confidence": confidence})
        if t != p:
            wrong.append({"image_id": image_id, "true": classes[t], "predicted": classes[p],
                          "confidence": confidence})
    wrong.sort(key=lambda row: -(row["confidence"] or 0.0))
    supported = [row["f1"] for row in per_class if row["support"] > 0]
    recalls = [row["recall"] for row in per_class if row["support"] > 0]
    interval = wilson_interval(correct, len(y_true))
    return {
        "count": len(y_true),
        "accuracy": _safe_div(correct, len(y_true)),
        "accuracy_ci95": list(interval) if interval else None,   # Wilson score interval
        "balanced_accuracy": float(np.mean(recalls)) if recalls else 0.0,
        "macro_f1": float(np.mean(supported)) if supported else 0.0,
        "confusion_matrix": matrix,
        "per_class": per_class,
        "misclassified": wrong[:max_misclassified],
        "predictions": predictions,
    }
