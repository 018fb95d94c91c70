"""A job's "I am alive" signal in Redis, beaten from a background thread while the job runs.

The database heartbeat of a training run is written with its progress, so it stops while the database
is busy (a long SQLite write elsewhere, a PostgreSQL restart) or while a long step reports nothing (the
test pass, the export). This key keeps beating through both, and lapses within `ttl_s` of the process
dying, so the reaper can tell a slow worker from a dead one.
"""
from __future__ import annotations

import logging
import threading

from app.extensions import get_redis

log = logging.getLogger(__name__)


def _key(name: str) -> str:
    return f"studio:alive:{name}"


class Heartbeat:
    """`with Heartbeat("run-12", ttl_s=60):` keeps the key alive (refreshed every ttl_s/4) until the block
    ends, then deletes it. Redis errors are logged, never raised: the job itself goes on."""

    def __init__(self, name: str, ttl_s: float):
        self.key = _key(name)
        self.ttl_ms = max(100, int(ttl_s * 1000))
        self.every_s = max(0.05, ttl_s / 4)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._redis = None

    def _beat(self) -> None:
        try:
            self._redis.set(self.key, "1", px=self.ttl_ms)
        except Exception as exc:  # Redis briefly away: the database heartbeat still counts
            log.warning("heartbeat %s not written: %s", self.key, exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self._beat()

    def __enter__(self) -> "Heartbeat":
        self._redis = get_redis()
        self._beat()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat {self.key}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self._redis.delete(self.key)
        except Exception:
            log.warning("heartbeat %s not removed (it expires by itself)", self.key)


def is_beating(name: str) -> bool:
    """Whether a Heartbeat(name) is alive right now (in any process on any machine)."""
    return bool(get_redis().exists(_key(name)))
