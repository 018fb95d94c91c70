"""Label suggestions: class probabilities for many image files, ranked by how unsure the model is.

Quick-mode models are a frozen pretrained backbone plus a small head, so their predictions can be
made from the dataset's stored backbone features (app.ml.embeddings) and the head alone: once an
image's features are stored, suggesting a label for it costs a matrix product, and the features of
new images are computed at ONNX Runtime speed on CPU. Every other model goes through the exported
model in batches (Predictor).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .embeddings import FeatureSetup, ImageFiles, Preprocess, compute_features, prepare_pass
from .errors import BadImage
from .files import local_file
from .artifacts import FILES
from .inference import DEFAULT_MAX_PIXELS, Predictor

log = logging.getLogger(__name__)
DECODE_CHUNK = 64  # images held decoded in memory at once on the Predictor path


@dataclass
class Scores:
    """Probabilities for the images that could be read, in input order, plus what was skipped."""

    classes: list[str]
    probs: np.ndarray                 # [n_ok, num_classes]
    ok: list[int]                     # input indices that have a row in probs
    unreadable: list[int] = field(default_factory=list)
    method: str = "model"             # 'embeddings' (quick mode: cached features + head) or 'model'


def rank(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(best class index, its probability, margin) per row; margin = top-1 minus top-2 probability,
    so a small margin means the model hesitates between two classes."""
    if probs.shape[0] == 0:
        empty = np.zeros(0)
        return empty.astype(int), empty, empty
    ordered = np.sort(probs, axis=1)
    second = ordered[:, -2] if probs.shape[1] > 1 else np.zeros(probs.shape[0])
    return probs.argmax(axis=1), ordered[:, -1], ordered[:, -1] - second


def score_files(artifact_dir: str | Path, files: ImageFiles, *, features: FeatureSetup | None = None,
                max_pixels: int = DEFAULT_MAX_PIXELS, batch_size: int = 32,
                on_progress: Callable[[int, int], None] | None = None) -> Scores:
    """Class probabilities for each file with the exported model in artifact_dir.

    Quick-mode models given a FeatureSetup use (and fill) the dataset's feature store, by `files.ids`.
    Files that cannot be decoded are listed in Scores.unreadable, never fatal.
    """
    quick = _load_quick_model(Path(artifact_dir)) if features is not None else None
    if quick is not None:
        return _score_quick(quick, files, features, on_progress)
    return _score_predictor(Predictor.load(artifact_dir), list(files.paths), max_pixels, batch_size, on_progress)


@dataclass
class _Quick:
    model: torch.nn.Module
    card: dict


def _load_quick_model(root: Path) -> _Quick | None:
    """The full classifier rebuilt from model.pt when the card says it was trained in quick mode."""
    import json

    from .architectures import build_model

    card = json.loads((root / FILES["card"]).read_text())
    meta = card.get("metadata") or {}
    if meta.get("mode") != "quick" or not (root / FILES["state_dict"]).exists():
        return None
    options = meta.get("options") or {}
    head = meta.get("head") or (options.get("head") if options.get("head") in ("linear", "mlp") else "linear")
    model = build_model(card["architecture"], len(card["classes"]), pretrained=False,
                        image_size=int(card["input"]["size"]), head=head,
                        dropout=float(options.get("dropout", 0.0)))
    state = torch.load(root / FILES["state_dict"], map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return _Quick(model.eval(), card)


def _score_quick(quick: _Quick, files: ImageFiles, setup: FeatureSetup, on_progress) -> Scores:
    card, size = quick.card, int(quick.card["input"]["size"])
    prep = Preprocess(size, card["input"]["mean"], card["input"]["std"])
    # the backbone is frozen in quick mode: its weights fingerprint names the same store training filled
    how = dataclasses.replace(prepare_pass(card["architecture"], prep, setup, quick.model.backbone),
                              skip_unreadable=True)
    features = compute_features(files, how, on_progress)
    log.info("suggestions from stored features: %s", features.stats.to_dict())
    head = quick.model.head.to(how.backbone.device)
    with torch.inference_mode():
        x = torch.from_numpy(features.vectors).to(how.backbone.device)
        probs = head(x).float().softmax(1).cpu().numpy()
    return Scores(list(card["classes"]), probs, features.ok, features.unreadable, method="embeddings")


def _score_predictor(predictor: Predictor, paths, max_pixels, batch_size, on_progress) -> Scores:
    rows, ok, unreadable = [], [], []
    for start in range(0, len(paths), DECODE_CHUNK):
        crops, idx = [], []
        for i in range(start, min(start + DECODE_CHUNK, len(paths))):
            try:
                crops.append(predictor.prepare(Path(local_file(paths[i])).read_bytes(), max_pixels))
                idx.append(i)
            except (BadImage, OSError):
                unreadable.append(i)
        if crops:
            rows.append(predictor.probabilities(predictor.normalize(crops), max_batch=batch_size))
            ok.extend(idx)
        if on_progress:
            on_progress(min(start + DECODE_CHUNK, len(paths)), len(paths))
    probs = np.concatenate(rows) if rows else np.zeros((0, len(predictor.classes)), dtype=np.float32)
    return Scores(list(predictor.classes), probs, ok, unreadable, method="model")
