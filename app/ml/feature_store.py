"""One dataset's cached backbone features for one (network, image size, weights, precision): a few
immutable `.npy` segments of rows (image id, content tag, float32 vector), indexed by image id.

- Appending writes a new segment (temporary name, then rename): two jobs can append at once without
  a lock, and a reader never sees half a file.
- A row is served only for the same image id AND the same content tag (the first 8 bytes of the
  image's sha256): an image id reused for other pixels, or a deleted image, never gets stale features.
- Compaction (under an exclusive file lock, skipped when another process holds it) merges the
  smallest segments once there are too many, and drops rows of image ids recorded as deleted
  (feature_layout.forget_images). Merged rows are written before the old segments are removed, so a
  reader sees every row at least once; a reader that loses a segment mid-read reads again.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from .feature_layout import FORGET_PREFIX, SEGMENT_PREFIX, stamp_of, stamped_name

log = logging.getLogger(__name__)

MAX_SEGMENTS = 8      # more than this and all but the largest half are merged into one


def content_tag(sha256_hex: str) -> int:
    """The tag stored with a row: the first 8 bytes of the image's sha256, as a signed 64-bit int."""
    return int.from_bytes(bytes.fromhex(sha256_hex[:16]), "little", signed=True)


def _row_dtype(dim: int) -> np.dtype:
    return np.dtype([("id", "<i8"), ("tag", "<i8"), ("f", "<f4", (dim,))])


class FeatureStore:
    """Cached feature vectors of one dataset under `root` (a folder of segments), dimension `dim`."""

    def __init__(self, root: str | Path, dim: int):
        self.root, self.dim = Path(root), int(dim)
        self._cached: tuple[tuple[Path, ...], _Index] | None = None

    # --- reading ----------------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        return sorted(self.root.glob(f"{SEGMENT_PREFIX}*.npy")) if self.root.is_dir() else []

    def _load_all(self) -> list[np.ndarray]:
        for _ in range(5):
            try:
                return [np.load(path, mmap_mode="r", allow_pickle=False) for path in self.segments()]
            except FileNotFoundError:  # merged away while listing: read the new set
                continue
        return [np.load(path, mmap_mode="r", allow_pickle=False) for path in self.segments()]

    def lookup(self, ids: Sequence[int], tags: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(found: bool [n], vectors: float32 [n, dim], zeros where not found) for (id, tag) pairs."""
        found = np.zeros(len(ids), dtype=bool)
        vectors = np.zeros((len(ids), self.dim), dtype=np.float32)
        if not len(ids):
            return found, vectors
        index = self._index()
        rows = index.find(np.asarray(ids, dtype=np.int64), np.asarray(tags, dtype=np.int64))
        hits = np.flatnonzero(rows >= 0)
        found[hits] = True
        segment_of, row_of = index.segment_of[rows[hits]], index.row_of[rows[hits]]
        for number in np.unique(segment_of).tolist():  # one fancy-indexed read per segment, in row order
            mine = segment_of == number
            positions, local = hits[mine], row_of[mine]
            by_row = np.argsort(local, kind="stable")
            vectors[positions[by_row]] = index.segments[number]["f"][local[by_row]]
        return found, vectors

    def _index(self) -> "_Index":
        """Every stored row's (id, tag) sorted for binary search; built once per set of segments (segments are
        never rewritten, only added and merged away), so a pass looking up page after page sorts once."""
        for _ in range(5):
            paths = tuple(self.segments())
            if self._cached is not None and self._cached[0] == paths:
                return self._cached[1]
            try:
                loaded = [np.load(path, mmap_mode="r", allow_pickle=False) for path in paths]
            except FileNotFoundError:  # merged away while listing: read the new set
                continue
            index = _Index([s for s in loaded if s.dtype == _row_dtype(self.dim)])
            self._cached = (paths, index)
            return index
        return _Index([s for s in self._load_all() if s.dtype == _row_dtype(self.dim)])

    def row_count(self) -> int:
        """Rows stored, duplicates and not yet compacted deletions included."""
        return sum(len(s) for s in self._load_all())

    # --- writing ----------------------------------------------------------------------------------

    def append(self, ids: Sequence[int], tags: Sequence[int], vectors: np.ndarray) -> None:
        """Add rows as one new segment, then compact if there are too many segments or deletions."""
        if not len(ids):
            return
        rows = np.empty(len(ids), dtype=_row_dtype(self.dim))
        rows["id"], rows["tag"], rows["f"] = np.asarray(ids, dtype=np.int64), np.asarray(tags, dtype=np.int64), vectors
        self.root.mkdir(parents=True, exist_ok=True)
        self._publish(rows, stamped_name(SEGMENT_PREFIX, ".npy"))
        if len(self.segments()) > MAX_SEGMENTS or self._forgets():
            self.compact()

    def _publish(self, rows: np.ndarray, name: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, rows, allow_pickle=False)
            os.replace(tmp, self.root / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _forgets(self) -> list[Path]:
        return sorted(self.root.glob(f"{FORGET_PREFIX}*.txt")) if self.root.is_dir() else []

    def compact(self) -> bool:
        """Merge small segments and apply recorded deletions; False when another process is at it."""
        with _try_lock(self.root / ".lock") as locked:
            if not locked:
                return False
            forgets = self._forgets()
            forgotten = _forgotten(forgets)
            segments = self.segments()
            merge = set(_smallest(segments)) | {p for p in segments if _has_forgotten(p, forgotten)}
            if merge:
                self._merge(sorted(merge), forgotten)
            for path in forgets:
                path.unlink(missing_ok=True)
            return True

    def _merge(self, paths: list[Path], forgotten: dict[int, int]) -> None:
        kept, newest = [], 0
        for path in paths:  # creation order
            rows = np.load(path, allow_pickle=False)
            stamp = stamp_of(path)
            newest = max(newest, stamp)
            dead = _dead(rows["id"], stamp, forgotten)
            kept.append(rows[~dead] if dead.any() else rows)
        rows = np.concatenate(kept) if kept else np.empty(0, dtype=_row_dtype(self.dim))
        # one row per image id: the newest (an id whose content changed keeps only its latest row)
        _, last = np.unique(rows["id"][::-1], return_index=True)
        rows = rows[np.sort(len(rows) - 1 - last)]
        if len(rows):
            self._publish(rows, stamped_name(SEGMENT_PREFIX, ".npy", stamp=newest))
        for path in paths:
            path.unlink(missing_ok=True)
        log.info("feature store %s: merged %d segment(s) into %d rows", self.root.name, len(paths), len(rows))


class _Index:
    """The (id, tag) of every row of some segments (in creation order), sorted by id, tag, then age."""

    def __init__(self, segments: list[np.ndarray]):
        self.segments = segments
        ids = np.concatenate([s["id"] for s in segments]) if segments else np.zeros(0, dtype=np.int64)
        tags = np.concatenate([s["tag"] for s in segments]) if segments else np.zeros(0, dtype=np.int64)
        self.segment_of = np.repeat(np.arange(len(segments), dtype=np.int32), [len(s) for s in segments])
        self.row_of = np.concatenate([np.arange(len(s)) for s in segments]) if segments else np.zeros(0, np.int64)
        self.order = np.lexsort((np.arange(len(ids)), tags, ids))  # a later row of the same (id, tag) sorts last
        self.ids, self.tags = ids[self.order], tags[self.order]

    def find(self, ids: np.ndarray, tags: np.ndarray) -> np.ndarray:
        """For each (id, tag): its newest row as an index into the concatenated segments, or -1."""
        out = np.full(len(ids), -1, dtype=np.int64)
        if not len(self.ids):
            return out
        first = np.searchsorted(self.ids, ids, side="left")
        last = np.searchsorted(self.ids, ids, side="right")
        single = last - first == 1  # the usual case: one row per id
        hit = single & (self.tags[np.minimum(first, len(self.ids) - 1)] == tags)
        out[hit] = self.order[first[hit]]
        for position in np.flatnonzero(last - first > 1).tolist():  # the same id stored more than once
            rows = np.flatnonzero(self.tags[first[position]:last[position]] == tags[position])
            if len(rows):
                out[position] = self.order[first[position] + rows[-1]]
        return out


def _smallest(segments: list[Path]) -> list[Path]:
    """The segments to merge for size, once there are too many: all but the MAX_SEGMENTS // 2 largest
    (big segments are rarely rewritten, so appending stays cheap as the store grows)."""
    if len(segments) <= MAX_SEGMENTS:
        return []
    by_size = sorted(segments, key=lambda p: p.stat().st_size)
    return by_size[:len(segments) - MAX_SEGMENTS // 2]


def _forgotten(paths: list[Path]) -> dict[int, int]:
    """image id -> latest time it was recorded as deleted."""
    out: dict[int, int] = {}
    for path in paths:
        stamp = stamp_of(path)
        with contextlib.suppress(OSError):
            for line in path.read_text().split():
                out[int(line)] = max(out.get(int(line), 0), stamp)
    return out


def _dead(ids: np.ndarray, stamp: int, forgotten: dict[int, int]) -> np.ndarray:
    """Which rows of a segment written at `stamp` belong to images deleted after it."""
    gone = [i for i, when in forgotten.items() if when > stamp]
    return np.isin(ids, np.asarray(gone, dtype=np.int64)) if gone else np.zeros(len(ids), dtype=bool)


def _has_forgotten(path: Path, forgotten: dict[int, int]) -> bool:
    if not forgotten:
        return False
    return bool(_dead(np.load(path, mmap_mode="r", allow_pickle=False)["id"], stamp_of(path), forgotten).any())


@contextlib.contextmanager
def _try_lock(path: Path):
    """Yield True holding an exclusive lock on `path`, or False at once when someone else holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: compaction is only an optimisation, skip it
        yield False
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
