"""The names stored files have in either backend (relative, '/'-separated)."""
from __future__ import annotations


def image_key(sha256: str) -> str:
    return f"images/{sha256[:2]}/{sha256}"


def thumb_key(sha256: str) -> str:
    return f"thumbs/{sha256[:2]}/{sha256}.webp"


def run_prefix(run_id: int) -> str:
    return f"models/{int(run_id)}"


def run_key(run_id: int, filename: str) -> str:
    return f"{run_prefix(run_id)}/{filename}"


def import_prefix(import_id: int) -> str:
    return f"uploads/{int(import_id)}"


def check_key(key: str) -> str:
    """A key names a place inside the store: relative, without '..' or empty parts."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise ValueError(f"not a storage key: {key!r}")
    return key
