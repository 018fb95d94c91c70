"""The bucket's weights/ folder as app.ml's weights shelf: with STORAGE_URL set, installed pretrained
weights files live there for every machine, and each machine's WEIGHTS_DIR is a cache of it."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from app.filestore.base import Store

PREFIX = "weights"
SEEDED = f"{PREFIX}/.seeded"  # written once the first machine's own weights are in the bucket
LISTING_SECONDS = 60.0  # how long pages trust what they last listed; loading a network always asks again


class StoreShelf:
    """app.ml.networks.WeightsShelf over a store: `weights/<file>` keys."""

    def __init__(self, store: Store, listing_seconds: float = LISTING_SECONDS):
        self.store = store
        self.listing_seconds = listing_seconds
        self._listing: tuple[float, dict[str, int]] | None = None

    def _key(self, name: str) -> str:
        return f"{PREFIX}/{name}"

    def installed(self, fresh: bool = False) -> dict[str, int]:
        listed = self._listing
        if fresh or listed is None or time.monotonic() - listed[0] > self.listing_seconds:
            files = {key[len(PREFIX) + 1:]: size for key, size in self.store.list(PREFIX)}
            names = {name: size for name, size in files.items()
                     if "/" not in name and not name.startswith(".") and not name.endswith(".json")}
            listed = self._listing = (time.monotonic(), names)
        return dict(listed[1])

    def get(self, name: str, dest: Path) -> None:
        with self.store.open(self._key(name)) as body, open(dest, "wb") as out:
            shutil.copyfileobj(body, out, 1 << 20)

    def read(self, name: str) -> bytes:
        return self.store.read(self._key(name))

    def put(self, name: str, path: Path) -> None:
        self.store.put_file(self._key(name), Path(path))
        self._listing = None

    def delete(self, name: str) -> None:
        self.store.delete(self._key(name))
        self._listing = None

    def seeded(self) -> bool:
        return self.store.exists(SEEDED)

    def mark_seeded(self) -> None:
        self.store.write(SEEDED, b"")
