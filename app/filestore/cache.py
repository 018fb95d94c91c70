"""A bounded folder of local copies of stored objects, least recently used first out.

Several processes (forked jobs, web workers) may share one cache folder: each copy is written under a
temporary name and renamed, a hit refreshes the file's access time (the LRU order; the modification
time stays the time of the fetch), and eviction rescans the folder, so the bound holds for all of them
together up to the copies being fetched at that moment. A file evicted while another process reads it
stays readable to that reader (POSIX unlink)."""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

LOW_WATER = 0.8  # eviction frees down to this share of the limit, so it runs rarely


class ObjectCache:
    def __init__(self, root: str | Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max(0, int(max_bytes))
        self._lock = threading.Lock()
        self._total: int | None = None  # this process's running estimate, corrected at each eviction
        self._last_stamp = 0

    def path(self, name: str) -> Path:
        return self.root / name

    def lookup(self, name: str) -> Path | None:
        """The cached copy (marked as just used), or None."""
        path = self.path(name)
        try:
            self._touch(path)
        except FileNotFoundError:
            return None
        return path

    def _touch(self, path: Path) -> None:
        """Mark as just used: the access time becomes a nanosecond stamp that grows with every use in
        this process (the file system's own clock may tick too coarsely to order uses in one burst).
        The modification time stays the time of the fetch: readers may key on it (app.serving does)."""
        with self._lock:
            self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
            stamp = self._last_stamp
        os.utime(path, ns=(stamp, path.stat().st_mtime_ns))

    def get(self, name: str, fetch: Callable[[Path], None]) -> Path:
        """The cached copy of name, calling fetch(temporary path) to make it on a miss."""
        found = self.lookup(name)
        if found is not None:
            return found
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}")
        try:
            fetch(tmp)
            self._touch(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._added(path)
        return path

    def drop(self, name: str) -> None:
        """Forget a copy (its object changed or was deleted)."""
        self.path(name).unlink(missing_ok=True)

    def usage(self) -> int:
        """Bytes the cache folder holds now."""
        return sum(size for _, size, _ in self._files())

    def _added(self, path: Path) -> None:
        with self._lock:
            if self._total is None:
                self._total = self.usage()
            else:
                self._total += path.stat().st_size
            if self._total > self.max_bytes:
                self._total = self._evict(keep=path)

    def _files(self) -> list[tuple[int, int, Path]]:
        """(last use, size, path) of every complete copy."""
        found = []
        for dirpath, _, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(".tmp-"):
                    continue
                path = Path(dirpath) / name
                try:
                    st = path.stat()
                except FileNotFoundError:  # evicted by another process meanwhile
                    continue
                found.append((st.st_atime_ns, st.st_size, path))
        return found

    def _evict(self, keep: Path) -> int:
        """Remove the least recently used copies (never `keep`, the one just fetched) until the folder is
        down to LOW_WATER of the limit; returns the bytes left."""
        files = sorted(self._files(), key=lambda f: f[0])
        total = sum(size for _, size, _ in files)
        target, removed = int(self.max_bytes * LOW_WATER), 0
        for _, size, path in files:
            if total <= target:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        log.info("storage cache %s: evicted %d file(s), %d bytes kept (limit %d)", self.root, removed, total,
                 self.max_bytes)
        return total
