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


def compute_embeddings(backbone: torch.nn.Module, paths: Sequence[str], keys: Sequence[str] | None,
                       image_size: int, mean, std, *, cache: EmbeddingCache | None = None,
                       device: torch.device | str = "cpu", batch_size: int = 16,
                       on_batch: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, EmbeddingStats]:
    """Pooled backbone features [N, D] (float32, CPU) for each path, using/filling the cache.

    on_batch(done, total) is called after each computed batch (progress, cancellation).
    """
    device = torch.device(device)
    stats = EmbeddingStats()
    vectors: list[np.ndarray | None] = [None] * len(paths)
    if cache is not None and keys is not None:
        for i, key in enumerate(keys):
            vectors[i] = cache.load(key)
    missing = [i for i, v in enumerate(vectors) if v is None]
    stats.reused = len(paths) - len(missing)
    if missing:
        backbone.eval()
        def load_batch(batch: list[int]) -> torch.Tensor:
            return torch.stack([data.load_eval_crop(paths[i], image_size) for i in batch])

        batches = [missing[i:i + batch_size] for i in range(0, len(missing), batch_size)]
        done = 0
        with torch.inference_mode(), Prefetcher(load_batch, batches, pin=device.type == "cuda") as loader:
            for batch, images in zip(batches, loader):
                x = to_device_images(images, device, mean, std)
                with torch.autocast(device.type, enabled=device.type == "cuda"):
                    feats = backbone(x).float().cpu().numpy()
                for i, vec in zip(batch, feats):
                    vectors[i] = vec
                    if cache is not None and keys is not None:
                        cache.save(keys[i], vec)
                done += len(batch)
                stats.computed += len(batch)
                if on_batch:
                    on_batch(done, len(missing))
    return torch.from_numpy(np.stack(vectors)).float(), stats
