"""Pages of rows newest first by an increasing integer key (keyset paging: no OFFSET, every page costs the
same however deep): the image grid and a webhook's deliveries."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import and_, asc, desc


@dataclass(frozen=True)
class Keyset:
    """fetch(condition, order, limit): up to `limit` rows (each with an `id`) in that order (asc(key) or
    desc(key)); exists(condition): whether any row matches. restart_past_end: a `before` past the last row
    (rows deleted meanwhile) gives the first page instead of an empty one."""

    fetch: Callable[[Any, Any, int], list]
    exists: Callable[[Any], bool]
    key: Any
    restart_past_end: bool = False

    def step(self, where, before: int | None, after: int | None, limit: int) -> tuple[list, bool, bool]:
        """(rows newest first, newer ones exist, older ones exist): the page older than `before`, or the
        page just newer than `after`, or the newest."""
        key = self.key
        if after is not None:
            found = self.fetch(and_(where, key > after), asc(key), limit + 1)
            if len(found) > limit:
                rows = found[:limit][::-1]
                return rows, True, self.exists(and_(where, key < rows[-1].id))
            before = None  # no full page above it: that is the first page
        found = self.fetch(where if before is None else and_(where, key < before), desc(key), limit + 1)
        if self.restart_past_end and not found and before is not None:
            return self.step(where, None, None, limit)
        newer = bool(found) and before is not None and self.exists(and_(where, key > found[0].id))
        return found[:limit], newer, len(found) > limit
