"""Fast model serving: a per-process LRU cache of loaded predictors and parallel image decoding.

Each web process loads a model once and keeps it (keyed by run id, artifact folder and the
model card's modification time, so a retrained model is reloaded). On CPU the ONNX graph runs
through onnxruntime; it is checked against the PyTorch model once at load time and the PyTorch
model is used instead if the two disagree.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

CARD_FILE = "model_card.json"
VERIFY_ATOL = 1e-4  # on softmax probabilities
DECODE_WORKERS = max(2, min(8, os.cpu_count() or 2))


@dataclass
class Upload:
    """One uploaded file: its name and bytes."""

    filename: str
    data: bytes


@dataclass
class Prepared:
    """An upload after decoding and preprocessing: a model-ready array, or a plain-English error."""

    filename: str
    array: np.ndarray | None = None
    error: str | None = None


class ModelCache:
    """A small thread-safe LRU of loaded predictors."""

    def __init__(self, size: int):
        self.size = max(1, int(size))
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()  # loading is rare and heavy: one at a time

    def get(self, key: tuple, loader: Callable[[], object]) -> object:
        """The cached value for key, loading (and evicting the least recently used) on a miss."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        with self._load_lock:
            with self._lock:  # another thread may have loaded it while we waited
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
            value = loader()
            with self._lock:
                self._items[key] = value
                while len(self._items) > self.size:
                    evicted, _ = self._items.popitem(last=False)
                    log.info("model cache: evicted %s", evicted)
        return value

    def forget(self, run_id: int) -> int:
        """Drop every cached version of a run's model; returns how many were dropped."""
        with self._lock:
            keys = [key for key in self._items if key[0] == run_id]
            for key in keys:
                del self._items[key]
        return len(keys)

    def keys(self) -> list[tuple]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = ModelCache(4)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def model_cache(size: int | None = None) -> ModelCache:
    """The process-wide cache, resized to `size` (MODEL_CACHE_SIZE) when given."""
    if size is not None:
        _cache.size = max(1, int(size))
    return _cache


def forget_model(run_id: int) -> None:
    """Call when a model is deleted (or its files replaced): the next request reloads it."""
    dropped = _cache.forget(run_id)
    if dropped:
        log.info("model cache: forgot run %s", run_id)


def cache_key(run_id: int, artifact_dir: str | Path) -> tuple:
    """(run id, folder, card mtime): a rewritten model card means a new model."""
    folder = Path(artifact_dir)
    try:
        mtime = (folder / CARD_FILE).stat().st_mtime_ns
    except OSError:
        mtime = None
    return (run_id, str(folder), mtime)


def get_predictor(run_id: int, artifact_dir: str | Path, cache_size: int, device: str | None = None):
    """The loaded predictor for a run, from the cache when possible."""
    key = cache_key(run_id, artifact_dir)
    return model_cache(cache_size).get(key, lambda: load_predictor(artifact_dir, device=device))


def load_predictor(artifact_dir: str | Path, device: str | None = None):
    """Load a model for serving: ONNX on CPU when it matches torch, torch otherwise (GPU when present)."""
    from app.ml.inference import Predictor

    device = device or _default_device()
    predictor = Predictor.load(artifact_dir, backend="auto", device=device)
    if _backend_name(predictor) != "onnx":
        log.info("serving %s with torch", artifact_dir)
        return predictor
    reference = Predictor.load(artifact_dir, backend="torch", device="cpu")
    difference = agreement(predictor, reference)
    if difference > VERIFY_ATOL:
        log.warning("ONNX model in %s differs from torch by %.2e; serving with torch instead",
                    artifact_dir, difference)
        return reference
    log.info("serving %s with onnxruntime (max difference to torch %.1e)", artifact_dir, difference)
    return predictor


def _default_device() -> str | None:
    """'cuda' when a GPU is present (Predictor's 'auto' alone would pick ONNX on the CPU), else None."""
    import torch

    return "cuda" if torch.cuda.is_available() else None


def _backend_name(predictor) -> str:
    return str(getattr(predictor, "backend", "torch")).lower()


def random_images(count: int = 2, size: int = 64, seed: int = 0) -> list:
    """Random RGB PIL images (used to compare two backends without any real data)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size + 7 * i, 3), dtype=np.uint8), "RGB")
            for i in range(count)]


def agreement(a, b, images: Sequence | None = None) -> float:
    """Largest absolute difference between two predictors' probabilities on the same images."""
    images = list(images) if images is not None else random_images()
    return float(np.abs(a.predict_proba(images) - b.predict_proba(images)).max())


def _decode_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="decode")
        return _pool


def _prepare_one(predictor, upload: Upload, max_pixels: int) -> Prepared:
    from app.ml.errors import BadImage
    from app.ml.inference import decode_image

    try:
        image = decode_image(upload.data, max_pixels)
    except BadImage as err:
        return Prepared(upload.filename, error=err.message)
    return Prepared(upload.filename, array=predictor.preprocess([image])[0])


def prepare_all(predictor, uploads: Sequence[Upload], max_pixels: int) -> list[Prepared]:
    """Decode and preprocess uploads in parallel (Pillow and torch release the GIL), in order."""
    if len(uploads) <= 1:
        return [_prepare_one(predictor, u, max_pixels) for u in uploads]
    return list(_decode_pool().map(lambda u: _prepare_one(predictor, u, max_pixels), uploads))


def forward(predictor, batch: np.ndarray, max_batch: int) -> np.ndarray:
    """Softmax probabilities for an already preprocessed batch [N,3,S,S], run in max_batch chunks."""
    # Predictor has no public "run a preprocessed batch" method yet (requested); its runner is it.
    run = predictor._run
    out = []
    for start in range(0, len(batch), max(1, max_batch)):
        logits = np.asarray(run(np.ascontiguousarray(batch[start:start + max_batch])))
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        out.append((exp / exp.sum(axis=1, keepdims=True)).astype(np.float32))
    return np.concatenate(out)


def predict_uploads(predictor, uploads: Sequence[Upload], max_pixels: int,
                    max_batch: int) -> tuple[list[Prepared], np.ndarray]:
    """Decode every upload, then run the good ones as one batch (chunked by max_batch).

    Returns (prepared uploads in order, probabilities [n_good, C] in the order of the good ones).
    """
    prepared = prepare_all(predictor, uploads, max_pixels)
    arrays = [p.array for p in prepared if p.array is not None]
    if not arrays:
        return prepared, np.zeros((0, len(predictor.classes)), dtype=np.float32)
    return prepared, forward(predictor, np.stack(arrays), max_batch)
