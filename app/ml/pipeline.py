"""Decode images in parallel with the forward pass: a pool of decoding threads fills batches ahead,
the caller runs each finished batch through the network while the next ones decode.

Every image goes through the evaluation crop of training and serving (data.eval_crop_image: JPEG
draft decode when the file is at least twice the needed size, one resize of the crop's box), then the
normalisation serving uses (inference.Predictor.normalize: x * 1/(255 std) - mean/std), written
straight into the batch. Pillow's decoder and resampler and numpy release the GIL, so threads use
every core.
"""
from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
from PIL import Image

from . import data

log = logging.getLogger(__name__)

G = TypeVar("G")

# What a damaged, truncated or non-image file raises while decoding (never fatal with skip_unreadable).
UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def available_cores() -> int:
    """CPU cores this process may run on (the container's or taskset's share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int | None) -> int:
    """threads > 0 as given; 0 or None: every core available to this process."""
    return int(threads) if threads and int(threads) > 0 else available_cores()


@dataclass(frozen=True)
class DecodeSpec:
    """How to turn files into model input: crop size, normalisation, batch size, decoding threads
    (0: all cores), batches decoded ahead of the one being used, and whether an unreadable file is
    skipped (reported in Batch.unreadable) or raised."""

    image_size: int
    mean: Sequence[float]
    std: Sequence[float]
    batch_size: int = 32
    threads: int = 0
    ahead: int = 2
    skip_unreadable: bool = False

    def scale_offset(self) -> tuple[np.ndarray, np.ndarray]:
        std = np.asarray(self.std, dtype=np.float64).reshape(3, 1, 1)
        scale = (1.0 / (255.0 * std)).astype(np.float32)
        offset = (-np.asarray(self.mean, dtype=np.float64).reshape(3, 1, 1) / std).astype(np.float32)
        return scale, offset


@dataclass
class Batch:
    """Decoded, normalised images float32 [n,3,size,size] for `indices` (positions in the path list);
    `unreadable` lists the positions of this batch's files that could not be decoded (skipped)."""

    indices: list[int]
    images: np.ndarray
    unreadable: list[int] = field(default_factory=list)


class _Filler:
    """Decodes one file into one row of a batch (runs in the pool's threads)."""

    def __init__(self, paths: Sequence[str], spec: DecodeSpec):
        self.paths, self.spec = paths, spec
        self.scale, self.offset = spec.scale_offset()

    def __call__(self, index: int, out: np.ndarray) -> bool:
        try:
            crop = np.asarray(data.eval_crop_image(data.load_rgb(self.paths[index], self.spec.image_size,
                                                                 shrink=False), self.spec.image_size))
        except UNREADABLE as exc:
            if not self.spec.skip_unreadable:
                raise
            log.info("skipping unreadable image %s: %s", self.paths[index], exc)
            return False
        np.multiply(crop.transpose(2, 0, 1), self.scale, out=out)
        np.add(out, self.offset, out=out)
        return True


def _submit(pool: ThreadPoolExecutor, fill: _Filler, indices: list[int], spec: DecodeSpec):
    size = spec.image_size
    images = np.empty((len(indices), 3, size, size), dtype=np.float32)
    futures = [pool.submit(fill, i, images[row]) for row, i in enumerate(indices)]
    return indices, images, futures


def _finish(indices: list[int], images: np.ndarray, futures: list[Future]) -> Batch:
    ok = [f.result() for f in futures]  # re-raises a decoding error here, in the caller's thread
    if all(ok):
        return Batch(list(indices), images)
    keep = [row for row, good in enumerate(ok) if good]
    return Batch([indices[r] for r in keep], images[keep], [i for i, good in zip(indices, ok) if not good])


def decoded_batches(paths: Sequence[str], indices: Sequence[int], spec: DecodeSpec) -> Iterator[Batch]:
    """Batches of the files at `indices` (in that order), decoded by a pool of spec.threads threads,
    spec.ahead batches ahead of the consumer. Closing the iterator early cancels pending decodes."""
    order = list(indices)
    chunks = deque(order[i:i + spec.batch_size] for i in range(0, len(order), spec.batch_size))
    fill = _Filler(paths, spec)
    pending: deque = deque()
    with ThreadPoolExecutor(resolve_threads(spec.threads), thread_name_prefix="decode") as pool:
        try:
            while chunks or pending:
                while chunks and len(pending) <= spec.ahead:
                    pending.append(_submit(pool, fill, chunks.popleft(), spec))
                yield _finish(*pending.popleft())
        finally:
            for _, _, futures in pending:
                for future in futures:
                    future.cancel()


def decoded_groups(groups: Iterable[G], paths_of: Callable[[G], Sequence[str]],
                   spec: DecodeSpec) -> Iterator[tuple[G, Batch]]:
    """(group, Batch) for every group's files in turn, batched within each group as decoded_batches batches
    them (Batch.indices: positions in paths_of(group)), all by one pool of spec.threads threads that keeps
    spec.ahead batches decoded ahead across group boundaries. Groups are read lazily (e.g. pages of rows
    from a database); a group without files yields nothing. Closing the iterator cancels pending decodes."""
    chunks = _group_chunks(groups, paths_of, spec)
    pending: deque = deque()
    with ThreadPoolExecutor(resolve_threads(spec.threads), thread_name_prefix="decode") as pool:
        try:
            while True:
                while len(pending) <= spec.ahead and (chunk := next(chunks, None)) is not None:
                    group, fill, indices = chunk
                    pending.append((group, _submit(pool, fill, indices, spec)))
                if not pending:
                    return
                group, submitted = pending.popleft()
                yield group, _finish(*submitted)
        finally:
            for _, (_, _, futures) in pending:
                for future in futures:
                    future.cancel()


def _group_chunks(groups: Iterable[G], paths_of: Callable[[G], Sequence[str]], spec: DecodeSpec):
    for group in groups:
        paths = paths_of(group)
        fill = _Filler(paths, spec)
        for start in range(0, len(paths), spec.batch_size):
            yield group, fill, list(range(start, min(len(paths), start + spec.batch_size)))
