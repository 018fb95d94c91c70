"""The state a background job shares with the pages: one small JSON document per (folder, key),
stored under the key <folder>/<key>.json (app/filestore: a local file or an object in the bucket, so a
job on another machine and the pages see the same document). Every change is a read-modify-write under a short Redis
lock, so a job's progress writes and a user's clicks never overwrite each other."""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Callable

from app.extensions import get_redis
from app.storage import get_storage

LOCK_TIMEOUT_S = 30
LOCK_WAIT_S = 15


class JobState:
    """The JSON state of one job-backed feature of one object, e.g. JobState("health", dataset_id)."""

    def __init__(self, folder: str, key: int):
        self.folder, self.key = folder, int(key)

    @property
    def storage_key(self) -> str:
        return f"{self.folder}/{self.key}.json"

    def read(self) -> dict:
        """The stored document ({} when there is none or it is unreadable)."""
        try:
            value = json.loads(get_storage().read(self.storage_key))
        except (FileNotFoundError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    @contextmanager
    def _locked(self):
        lock = get_redis().lock(f"studio:state-lock:{self.folder}:{self.key}", timeout=LOCK_TIMEOUT_S,
                                blocking_timeout=LOCK_WAIT_S)
        with lock:
            yield

    def update(self, change: Callable[[dict], None] | dict, *, prepare: Callable[[dict], dict] | None = None) -> dict:
        """Apply `change` (a function that edits the document, or a dict of new values) under the lock
        and write the result atomically. `prepare` turns the stored document into the one to change
        (e.g. filling defaults). An exception raised by `change` leaves the stored state as it was."""
        with self._locked():
            state = self.read()
            if prepare is not None:
                state = prepare(state)
            if callable(change):
                change(state)
            else:
                state.update(change)
            get_storage().write(self.storage_key, json.dumps(state).encode("utf-8"))
        return state

    def replace(self, state: dict) -> dict:
        """Store `state` as the whole document (under the lock)."""
        def swap(current: dict) -> None:
            current.clear()
            current.update(state)

        return self.update(swap)

    def remove(self) -> None:
        get_storage().delete(self.storage_key)
