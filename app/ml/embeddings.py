"""Frozen-backbone features for many image files (quick mode, health check, label suggestions).

Files are decoded by a pool of threads while the backbone runs (pipeline), the backbone runs through
ONNX Runtime on CPU and torch on CUDA (backbone_runtime), and the vectors are kept per dataset in a
feature store indexed by image id (feature_store): a file is decoded and run once per dataset,
network, image size and precision.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .backbone_runtime import FEATURE_BATCH, Backbone, RuntimeSpec, open_backbone
from .feature_layout import store_dir
from .feature_store import FeatureStore, content_tag
from .files import local_file
from .pipeline import DecodeSpec, decoded_batches

log = logging.getLogger(__name__)

BATCH = FEATURE_BATCH  # images per forward pass
FLUSH_ROWS = 4096   # computed rows written to the store at least this often (a cancelled pass keeps them)


@dataclass(frozen=True)
class ImageFiles:
    """Image files with, in the same order, their sha256 (None: hashed when needed) and image ids
    (None: the vectors are not stored)."""

    paths: Sequence[str]
    keys: Sequence[str] | None = None
    ids: Sequence[int] | None = None


@dataclass(frozen=True)
class Preprocess:
    """How a backbone wants its input: the evaluation crop size and the normalisation."""

    image_size: int
    mean: Sequence[float]
    std: Sequence[float]


@dataclass(frozen=True)
class FeatureSetup:
    """Where features are computed and kept: the dataset's folder of feature stores (None: not kept),
    the folder of exported backbones (None: torch only), the device (None: CUDA when present) and the
    threads for decoding and ONNX Runtime (0: all cores)."""

    dataset_dir: str | Path | None = None
    backbone_dir: str | Path | None = None
    device: str | torch.device | None = None
    threads: int = 0


@dataclass
class EmbeddingStats:
    """How many vectors were computed now vs. read from the store, and how the backbone ran."""

    computed: int = 0
    reused: int = 0
    unreadable: int = 0
    runtime: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"computed": self.computed, "reused": self.reused, "unreadable": self.unreadable,
                "runtime": self.runtime, "seconds": round(self.seconds, 3)}


@dataclass
class Features:
    """Vectors [len(ok), D] for the files at positions `ok`; `unreadable`: positions skipped."""

    vectors: np.ndarray
    ok: list[int]
    unreadable: list[int] = field(default_factory=list)
    stats: EmbeddingStats = field(default_factory=EmbeddingStats)


@dataclass(frozen=True)
class FeaturePass:
    """A backbone ready to run, its input preprocessing, and where vectors are kept."""

    backbone: Backbone
    prep: Preprocess
    store: FeatureStore | None = None
    threads: int = 0
    skip_unreadable: bool = False


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (the content key when the caller does not know it)."""
    digest = hashlib.sha256()
    with open(local_file(path), "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def prepare_pass(architecture: str, prep: Preprocess, setup: FeatureSetup,
                 module: torch.nn.Module | None = None) -> FeaturePass:
    """Open the backbone (ONNX Runtime on CPU when setup.backbone_dir is set) and the dataset's store."""
    backbone = open_backbone(RuntimeSpec(architecture, prep.image_size, setup.device, setup.backbone_dir,
                                         setup.threads), module)
    store = None
    if setup.dataset_dir is not None:
        variant = f"{backbone.fingerprint}-{backbone.precision}"
        store = FeatureStore(store_dir(setup.dataset_dir, architecture, prep.image_size, variant),
                             backbone.feature_dim)
    return FeaturePass(backbone, prep, store, setup.threads)


def compute_features(files: ImageFiles, how: FeaturePass,
                     on_batch: Callable[[int, int], None] | None = None) -> Features:
    """Vectors for every file, read from the store where present, computed (and stored) otherwise.

    on_batch(done, total) after each computed batch (progress; it may raise to cancel: what was
    computed so far is still stored). Unreadable files raise unless how.skip_unreadable.
    """
    started = time.perf_counter()
    paths, n = list(files.paths), len(files.paths)
    stats = EmbeddingStats(runtime=how.backbone.kind)
    tags = _tags(files) if how.store is not None and files.ids is not None else None
    if tags is not None:
        have, vectors = how.store.lookup(files.ids, tags)
    else:
        have, vectors = np.zeros(n, dtype=bool), np.zeros((n, how.backbone.feature_dim), dtype=np.float32)
    missing = np.flatnonzero(~have).tolist()
    stats.reused = n - len(missing)
    unreadable: list[int] = []
    pending: list[int] = []
    spec = DecodeSpec(how.prep.image_size, how.prep.mean, how.prep.std, BATCH, how.threads,
                      skip_unreadable=how.skip_unreadable)
    try:
        for batch in decoded_batches(paths, missing, spec):
            unreadable += batch.unreadable
            if batch.indices:
                vectors[batch.indices] = how.backbone(batch.images)
                have[batch.indices] = True
                pending += batch.indices
            stats.computed += len(batch.indices)
            if tags is not None and len(pending) >= FLUSH_ROWS:
                pending = _flush(how.store, files, tags, vectors, pending)
            if on_batch:
                on_batch(stats.computed + len(unreadable), len(missing))
    finally:
        if tags is not None:
            _flush(how.store, files, tags, vectors, pending)
    stats.unreadable, stats.seconds = len(unreadable), time.perf_counter() - started
    ok = np.flatnonzero(have)
    return Features(vectors if len(ok) == n else vectors[ok], ok.tolist(), sorted(unreadable), stats)


def _tags(files: ImageFiles) -> list[int]:
    keys = files.keys if files.keys is not None else [file_sha256(p) for p in files.paths]
    return [content_tag(k) for k in keys]


def _flush(store: FeatureStore, files: ImageFiles, tags: list[int], vectors: np.ndarray,
           pending: list[int]) -> list[int]:
    """Store computed rows; a store that cannot be written (disk full, read-only) only costs a
    recomputation next time, so the pass goes on."""
    if pending:
        try:
            store.append([files.ids[i] for i in pending], [tags[i] for i in pending], vectors[pending])
        except OSError as exc:
            log.warning("features not stored in %s (%s); they will be computed again next time", store.root, exc)
    return []
