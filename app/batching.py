"""Splitting long lists for SQL: never more than IN_CHUNK values in one `IN (...)` (some SQLite builds
allow only 999 or 32,766 parameters per statement, and huge statements hold locks for long)."""
from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
IN_CHUNK = 500


def chunked(items: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
