"""Quick mode: frozen-backbone embeddings, cached on disk, and a small head trained on them."""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from . import data
from .runtime import Prefetcher, to_device_images

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # bump when preprocessing or backbone code changes the numbers
BATCH = 16  # small batches are faster on CPU for these networks (cache-friendly)


@dataclass(frozen=True)
class ImageFiles:
    """Image files and their cache keys (sha256 of the bytes; None: no caching), in the same order."""

    paths: Sequence[str]
    keys: Sequence[str] | None = None


@dataclass(frozen=True)
class Preprocess:
    """How a backbone wants its input: the evaluation crop size and the normalisation."""

    image_size: int
    mean: Sequence[float]
    std: Sequence[float]


@dataclass
class EmbeddingStats:
    """How many embeddings were computed now vs. read from the disk cache."""

    computed: int = 0
    reused: int = 0

    def to_dict(self) -> dict:
        return {"computed": self.computed, "reused": self.reused}


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (the default embedding cache key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class EmbeddingCache:
    """One .npy (float32 vector) per (key, backbone, image size) under cache_dir."""

    def __init__(self, cache_dir: str | os.PathLike, backbone: str, image_size: int):
        self.root = Path(cache_dir) / f"{backbone}-{image_size}-v{CACHE_FORMAT}"

    def path(self, key: str) -> Path:
        name = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.root / name[:2] / f"{name}.npy"

    def load(self, key: str) -> np.ndarray | None:
        try:
            return np.load(self.path(key), allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError):
            return None

    def save(self, key: str, vector: np.ndarray) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # write-then-rename so a concurrent reader never sees half a file
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, vector.astype(np.float32), allow_pickle=False)
        os.replace(tmp, path)


def compute_embeddings(backbone: torch.nn.Module, files: ImageFiles, prep: Preprocess, *,
                       cache: EmbeddingCache | None = None, device: torch.device | str = "cpu",
                       on_batch: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, EmbeddingStats]:
    """Pooled backbone features [N, D] (float32, CPU) for each file, using/filling the cache.

    on_batch(done, total) is called after each computed batch (progress, cancellation).
    """
    device = torch.device(device)
    stats = EmbeddingStats()
    paths, keys = list(files.paths), files.keys
    vectors: list[np.ndarray | None] = [None] * len(paths)
    if cache is not None and keys is not None:
        vectors = [cache.load(key) for key in keys]
    missing = [i for i, v in enumerate(vectors) if v is None]
    stats.reused = len(paths) - len(missing)
    if missing:
        for batch, feats in _computed(backbone, paths, missing, prep, device):
            for i, vec in zip(batch, feats):
                vectors[i] = vec
                if cache is not None and keys is not None:
                    cache.save(keys[i], vec)
            stats.computed += len(batch)
            if on_batch:
                on_batch(stats.computed, len(missing))
    return torch.from_numpy(np.stack(vectors)).float(), stats


def _computed(backbone: torch.nn.Module, paths: Sequence[str], indices: list[int], prep: Preprocess,
              device: torch.device):
    """(batch of indices, their features [n, D] as numpy) for the given indices, BATCH at a time;
    the next batch is decoded in a background thread while this one runs."""
    backbone.eval()

    def load_batch(batch: list[int]) -> torch.Tensor:
        return torch.stack([data.load_eval_crop(paths[i], prep.image_size) for i in batch])

    batches = [indices[i:i + BATCH] for i in range(0, len(indices), BATCH)]
    with torch.inference_mode(), Prefetcher(load_batch, batches, pin=device.type == "cuda") as loader:
        for batch, images in zip(batches, loader):
            x = to_device_images(images, device, prep.mean, prep.std)
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                yield batch, backbone(x).float().cpu().numpy()
