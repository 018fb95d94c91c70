"""Where a dataset's cached backbone features live, and removing them; no numpy or torch needed, so the
web process can call it.

    <dataset dir>/                                   one per dataset (the caller chooses where)
        <network>-<size>-<weights>-<precision>-v<N>/ one store per way of computing features
            seg-<time>-<random>.npy                  immutable segments: image id, content tag, vector
            forget-<time>-<random>.txt               image ids deleted since (applied by compaction)
"""
from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Iterable

from .files import write_atomic

FORMAT = 1  # bump when preprocessing or the segment layout changes the stored numbers
SEGMENT_PREFIX, FORGET_PREFIX = "seg-", "forget-"


def store_dir(dataset_dir: str | Path, architecture: str, image_size: int, variant: str) -> Path:
    """The folder of one store: variant names the weights and precision (see backbone_runtime)."""
    return Path(dataset_dir) / f"{architecture}-{image_size}-{variant}-v{FORMAT}"


def stamped_name(prefix: str, suffix: str, stamp: int | None = None) -> str:
    """prefix + zero-padded time in ns + random part: names sort in creation order."""
    return f"{prefix}{stamp if stamp is not None else time.time_ns():020d}-{uuid.uuid4().hex[:8]}{suffix}"


def stamp_of(path: Path) -> int:
    """The creation time written into a stamped file name."""
    return int(path.name.split("-")[1])


def remove_dataset_features(dataset_dir: str | Path) -> None:
    """Delete every feature store of a dataset (all networks, sizes, precisions)."""
    shutil.rmtree(dataset_dir, ignore_errors=True)


def forget_images(dataset_dir: str | Path, image_ids: Iterable[int]) -> int:
    """Record deleted image ids in each of the dataset's stores; their rows are dropped at the next
    compaction. (Rows are only ever served for the same image id AND the same content, so a deleted
    image is never served stale even before that.) Returns how many stores were told."""
    ids = sorted({int(i) for i in image_ids})
    root = Path(dataset_dir)
    if not ids or not root.is_dir():
        return 0
    told = 0
    for store in root.iterdir():
        if not store.is_dir():
            continue
        try:
            write_atomic(store / stamped_name(FORGET_PREFIX, ".txt"), "".join(f"{i}\n" for i in ids), parents=False)
            told += 1
        except FileNotFoundError:  # the store was removed meanwhile: nothing left to forget
            pass
    return told


