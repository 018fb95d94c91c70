"""Ids that arrive as text (URLs, forms, query strings): a positive integer a database column can hold,
or nothing. A larger number can name no row, so it is "not found", never an overflow error."""
from __future__ import annotations

from app.extensions import MAX_DB_INT


def parse_id(raw, minimum: int = 1) -> int | None:
    """The id in `raw` ('12', 12), or None for anything that is not a database integer >= minimum
    (paging cursors use minimum=0: 'after=0' means from the oldest)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) <= 19:
        value = int(raw.strip())
    else:
        return None
    return value if minimum <= value <= MAX_DB_INT else None
