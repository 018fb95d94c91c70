"""A child process for the feature-store concurrency test: imports numpy and the store only (spawned
processes re-import the module their target lives in, and the test module pulls in torch)."""
from __future__ import annotations

import numpy as np

from app.ml.feature_store import FeatureStore


def append_many(root: str, start: int, count: int = 30) -> None:
    store = FeatureStore(root, dim=4)
    for k in range(start, start + count):
        store.append([k], [k], np.full((1, 4), k, dtype=np.float32))
