"""Testing a trained model on labeled images it has not seen, in pages of any size at constant memory.

`Scorer` loads an exported model once; `evaluate_pages` scores one page of image files after another with it:
a quick-mode model through the dataset's feature store and its head (embeddings: features already stored
cost a matrix product, new ones are computed at ONNX Runtime speed and kept), every other model through its
exported file (inference.Predictor: ONNX Runtime on CPU), the files of all pages decoded by one pool of
threads while the network runs (pipeline.decoded_groups). `Tally` keeps what the report needs as pages go
by: the confusion matrix and the most confident mistakes, never a row per image.
"""
from __future__ import annotations

import dataclasses
import heapq
import logging
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from .embeddings import FeatureSetup, ImageFiles, Preprocess, compute_features, prepare_pass
from .inference import Predictor
from .intervals import wilson_interval
from .metrics import per_class_metrics
from .pipeline import DecodeSpec, decoded_groups
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


Page = tuple[ImageFiles, Sequence[int]]  # image files and their true class indices (the model's)
OnBatch = Callable[[int], None] | None


class Scorer:
    """A model loaded once, scoring pages of labeled image files into a Tally: Scorer.open(artifact_dir, setup),
    then evaluate_pages."""

    def __init__(self, classes: list[str], tally_pages: Callable[[Iterable[Page], Tally, OnBatch], None],
                 method: str):
        self.classes, self._tally_pages, self.method = classes, tally_pages, method

    @classmethod
    def open(cls, artifact_dir: str | Path, setup: FeatureSetup) -> "Scorer":
        """Quick-mode models read and fill the feature store of setup.dataset_dir (by image id); the others
        run their exported file. setup.threads: decoding and ONNX Runtime threads (0: all cores)."""
        quick = _load_quick_model(Path(artifact_dir))
        if quick is not None:
            return cls(list(quick.card["classes"]), _quick_scorer(quick, setup), "embeddings")
        predictor = Predictor.load(artifact_dir, threads=setup.threads, device=setup.device)
        return cls(list(predictor.classes), _predictor_scorer(predictor, setup.threads), "model")


def _ids(files: ImageFiles) -> Sequence[int]:
    return files.ids if files.ids is not None else range(len(files.paths))


def _quick_scorer(quick, setup: FeatureSetup):
    """Page by page: each page's features come from the store (or are computed and kept), then the head."""
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

    def tally_pages(pages: Iterable[Page], tally: Tally, on_batch: OnBatch) -> None:
        done = 0
        for files, truths in pages:
            start = done
            scores = score(files, (lambda n: on_batch(start + n)) if on_batch else None)
            tally.unreadable += len(scores.unreadable)
            ids = _ids(files)
            tally.add([truths[i] for i in scores.ok], scores.probs, [ids[i] for i in scores.ok])
            done += len(files.paths)

    return tally_pages


def _predictor_scorer(predictor: Predictor, threads: int):
    """All pages through one decoding pool (pipeline.decoded_groups): the next page decodes while the last
    batches of this one run, so the pool never drains at a page boundary. Batches never span two pages, so
    each image meets the same batch, and gets the same probabilities, as when pages were scored one by one."""
    spec = DecodeSpec(predictor.image_size, predictor.mean, predictor.std, BATCH, threads, skip_unreadable=True)

    def tally_pages(pages: Iterable[Page], tally: Tally, on_batch: OnBatch) -> None:
        done = 0
        for (files, truths), batch in decoded_groups(pages, lambda page: page[0].paths, spec):
            tally.unreadable += len(batch.unreadable)
            if batch.indices:
                ids = _ids(files)
                tally.add([truths[i] for i in batch.indices], predictor.probabilities(batch.images, max_batch=BATCH),
                          [ids[i] for i in batch.indices])
            done += len(batch.indices) + len(batch.unreadable)
            if on_batch:
                on_batch(done)

    return tally_pages


def evaluate_pages(scorer: Scorer, pages: Iterable[Page], tally: Tally, on_batch: OnBatch = None) -> Tally:
    """Score every page of (files, true class indices) into `tally` (pages are read lazily, one or two ahead
    at most). on_batch(images done in all) after each batch; it may raise (e.g. to cancel): what was tallied
    so far stays in `tally`."""
    scorer._tally_pages(pages, tally, on_batch)
    return tally
