"""Image files by reference: a local path, or a name like s3://bucket/key that the application's
storage turns into a local copy (fetched into its bounded cache on first use).

The library reads every image through local_file(), so training, feature passes, health checks and
suggestions work the same on a local folder and on object storage; which resolver is installed is
the application's business (app/storage.py), as with set_weights_dir. Also: write_atomic."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
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


def write_atomic(path: Path, data: bytes | str, parents: bool = True) -> None:
    """Write via a temporary file + rename, so a crash never leaves a half-written file. parents=False:
    a missing folder is a FileNotFoundError instead of being made again."""
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
