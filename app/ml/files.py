"""Image files by reference: a local path, or a name like s3://bucket/key that the application's
storage turns into a local copy (fetched into its bounded cache on first use).

The library reads every image through local_file(), so training, feature passes, health checks and
suggestions work the same on a local folder and on object storage; which resolver is installed is
the application's business (app/storage.py), as with set_weights_dir."""
from __future__ import annotations

from typing import Callable

_resolver: Callable[[str], str] | None = None


def set_resolver(resolver: Callable[[str], str] | None) -> None:
    """Install the function that makes a local path of a non-local reference (None: paths only)."""
    global _resolver
    _resolver = resolver


def local_file(ref: str) -> str:
    """A path that can be opened: `ref` itself when it is one, else the resolver's local copy."""
    if "://" in str(ref) and _resolver is not None:
        return _resolver(str(ref))
    return ref
