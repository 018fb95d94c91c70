"""Testing a trained model on labeled images it has not seen, in pages of any size at constant memory.

`Scorer` loads an exported model once and gives class probabilities for one page of image files after
another: a quick-mode model through the dataset's feature store and its head (embeddings: features
already stored cost a matrix product, new ones are computed at ONNX Runtime speed and kept), every other
model through its exported file (inference.Predictor: ONNX Runtime on CPU), its files decoded by a pool
of threads while the network runs (pipeline). `Tally` keeps what the report needs as pages go by: the
confusion matrix and the most confident mistakes, never a row per image.
"""
from __future__ import annotations

import dataclasses
import heapq
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .embeddings import FeatureSetup, ImageFiles, Preprocess, compute_features, prepare_pass
from .inference import Predictor
from .intervals import wilson_interval
from .metrics import per_class_metrics
from .pipeline import DecodeSpec, decoded_batches
from .suggest import Scores, _load_quick_model

log = logging.getLogger(__name__)

BATCH = 32
MISTAKES_KEPT = 200  # the most confident mistakes an evaluation keeps (a page shows them)


class Tally:
    """Counts for a classification report, filled a page at a time (class indices of the model)."""

    def __init__(self, classes: Sequence[str], keep: int = MISTAKES_KEPT):
        self.classes = list(classes)
        self.matrix = np.zeros((len(self.classes), len(self.classes)), dtype=np.int64)
        self.keep = keep
        self._mistakes: list[tuple[float, int, int, int]] = []  # min-heap (confidence, -image_id, true, predicted)
        self.unreadable = 0

    def add(self, truths: Sequence[int], probs: np.ndarray, image_ids: Sequence[int]) -> None:
        """One page's true class indices, probabilities [n, classes] and image ids (same order)."""
        if len(truths) == 0:
            return
        truths = np.asarray(truths, dtype=np.int64)
        predicted = probs.argmax(axis=1)
        np.add.at(self.matrix, (truths, predicted), 1)
        for row in np.flatnonzero(truths != predicted):
            item = (float(probs[row, predicted[row]]), -int(image_ids[row]), int(truths[row]), int(predicted[row]))
            if len(self._mistakes) < self.keep:
                heapq.heappush(self._mistakes, item)
            elif item > self._mistakes[0]:
                heapq.heapreplace(self._mistakes, item)

    @property
    def count(self) -> int:
        return int(self.matrix.sum())

    def mistakes(self) -> list[dict]:
        """The kept mistakes, most confident first: {image_id, true, predicted, confidence} (class names)."""
        return [{"image_id": -neg_id, "true": self.classes[t], "predicted": self.classes[p],
                 "confidence": round(confidence, 4)}
                for confidence, neg_id, t, p in sorted(self._mistakes, reverse=True)]

    def report(self) -> dict:
        """count, accuracy with its 95% Wilson interval, balanced accuracy, macro-F1 (both over the classes
        that had images), confusion_matrix [true][predicted] and per_class, as metrics.classification_report
        names them."""
        matrix = self.matrix.tolist()
        per_class = per_class_metrics(matrix, self.classes)
        total, correct = self.count, int(np.trace(self.matrix))
        present = [row for row in per_class if row["support"] > 0]
        interval = wilson_interval(correct, total)
        return {"count": total, "correct": correct, "accuracy": correct / total if total else 0.0,
                "accuracy_ci95": list(interval) if interval else None,
                "balanced_accuracy": float(np.mean([r["recall"] for r in present])) if present else 0.0,
                "macro_f1": float(np.mean([r["f1"] for r in present])) if present else 0.0,
                "confusion_matrix": matrix, "per_class": per_class, "unreadable": self.unreadable}


class Scorer:
    """A model loaded once, scoring pages of image files: Scorer.open(artifact_dir, setup)."""

    def __init__(self, classes: list[str], score: Callable[[ImageFiles, Callable | None], Scores], method: str):
        self.classes, self._score, self.method = classes, score, method

    @classmethod
    def open(cls, artifact_dir: str | Path, setup: FeatureSetup) -> "Scorer":
        """Quick-mode models read and fill the feature store of setup.dataset_dir (by image id); the others
        run their exported file. setup.threads: decoding and ONNX Runtime threads (0: all cores)."""
        quick = _load_quick_model(Path(artifact_dir))
        if quick is not None:
            return cls(list(quick.card["classes"]), _quick_scorer(quick, setup), "embeddings")
        predictor = Predictor.load(artifact_dir, threads=setup.threads, device=setup.device)
        return cls(list(predictor.classes), _predictor_scorer(predictor, setup.threads), "model")

    def score(self, files: ImageFiles, on_batch: Callable[[int], None] | None = None) -> Scores:
        """Probabilities for one page of files (unreadable ones skipped, listed in Scores.unreadable).
        on_batch(done) after each batch with the files of this page done so far; it may raise to stop."""
        return self._score(files, on_batch)


def _quick_scorer(quick, setup: FeatureSetup):
    card = quick.card
    prep = Preprocess(int(card["input"]["size"]), card["input"]["mean"], card["input"]["std"])
    # the backbone is frozen in quick mode: its fingerprint names the same store training filled
    how = dataclasses.replace(prepare_pass(card["architecture"], prep, setup, quick.model.backbone),
                              skip_unreadable=True)
    head = quick.model.head.to(how.backbone.device).eval()

    def score(files: ImageFiles, on_batch) -> Scores:
        features = compute_features(files, how, (lambda done, _total: on_batch(done)) if on_batch else None)
        with torch.inference_mode():
            x = torch.from_numpy(features.vectors).to(how.backbone.device)
            probs = head(x).float().softmax(1).cpu().numpy()
        return Scores(list(card["classes"]), probs, features.ok, features.unreadable, method="embeddings")

    return score


def _predictor_scorer(predictor: Predictor, threads: int):
    spec = DecodeSpec(predictor.image_size, predictor.mean, predictor.std, BATCH, threads, skip_unreadable=True)

    def score(files: ImageFiles, on_batch) -> Scores:
        rows, ok, unreadable, done = [], [], [], 0
        for batch in decoded_batches(list(files.paths), range(len(files.paths)), spec):
            unreadable += batch.unreadable
            if batch.indices:
                rows.append(predictor.probabilities(batch.images, max_batch=BATCH))
                ok += batch.indices
            done += len(batch.indices) + len(batch.unreadable)
            if on_batch:
                on_batch(done)
        probs = np.concatenate(rows) if rows else np.zeros((0, len(predictor.classes)), dtype=np.float32)
        return Scores(list(predictor.classes), probs, ok, sorted(unreadable), method="model")

    return score


def evaluate_pages(scorer: Scorer, pages, tally: Tally, on_batch: Callable[[int], None] | None = None) -> Tally:
    """Score every page of (files, true class indices) into `tally`. on_batch(images done in all) after
    each batch; it may raise (e.g. to cancel): what was tallied so far stays in `tally`."""
    done = 0
    for files, truths in pages:
        start = done
        scores = scorer.score(files, (lambda n: on_batch(start + n)) if on_batch else None)
        tally.unreadable += len(scores.unreadable)
        ids = files.ids if files.ids is not None else range(len(files.paths))
        tally.add([truths[i] for i in scores.ok], scores.probs, [ids[i] for i in scores.ok])
        done += len(files.paths)
    return tally
