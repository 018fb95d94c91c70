"""Getting pretrained weights files into the weights folder: downloaded or brought along, always checked.

Every file is first written under <weights folder>/.incoming/, then checked - the SHA-256 must start
with the prefix in the official file name (as torch.hub checks it), and the file must load strictly into
its architecture - and only then renamed to its official name, which is what makes the network
installed. A file that fails a check is deleted: nothing half-written is ever taken for installed.

Torch-free at import (the web process stages uploads); the load check imports torch when it runs.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import WeightsError
from .networks import NetworkSpec, spec, weights_dir, weights_path

log = logging.getLogger(__name__)

CHUNK = 1 << 20
INCOMING = ".incoming"
Progress = Callable[[int, "int | None"], None]   # (bytes so far, total bytes or None when unknown)


@dataclass(frozen=True)
class Staged:
    """A file under .incoming/ whose SHA-256 matched: ready for install_staged()."""

    name: str
    path: Path
    sha256: str
    size: int


def _source(name: str) -> NetworkSpec:
    entry = spec(name)
    if entry.weights is None:
        raise WeightsError(f"{entry.label} has no weights file to install"
                           + (" (its weights are built in)." if entry.pretrained else " (it learns from scratch)."))
    return entry


def _folder() -> Path:
    folder = weights_dir()
    if folder is None:
        raise WeightsError("No weights folder is configured (set WEIGHTS_DIR).")
    return folder


def incoming_dir() -> Path:
    """Where files wait while they are checked (inside the weights folder: the final rename is atomic)."""
    path = _folder() / INCOMING
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_part_file(name: str) -> Path:
    """A fresh, unused file name under .incoming/ for this network."""
    return incoming_dir() / f"{name}-{uuid.uuid4().hex[:12]}.part"


def discard(path: str | Path | None) -> None:
    """Delete a staged or partial file (gone already is fine)."""
    if path:
        Path(path).unlink(missing_ok=True)


def sidecar_path(name: str) -> Path:
    """<file>.json beside an installed weights file: its hash, size, when and from where."""
    path = weights_path(name)
    return path.with_name(path.name + ".json")


# --- checks -------------------------------------------------------------------------------------

def check_hash(name: str, sha256: str, size: int) -> None:
    """Refuse a file whose SHA-256 does not start with the official file name's hash prefix."""
    source = _source(name).weights
    if sha256.startswith(source.sha256_prefix):
        return
    mb, expected = size / 2**20, source.size_mb
    why = ""
    if size < 0.99 * source.size_bytes:
        why = f" It is {mb:.1f} MB where {expected:.1f} MB was expected: it is incomplete or another file."
    elif size > 1.01 * source.size_bytes:
        why = f" It is {mb:.1f} MB where {expected:.1f} MB was expected: it is another file."
    raise WeightsError(f"This is not the {spec(name).label} weights file {source.file_name}: its SHA-256 starts "
                       f"with {sha256[:len(source.sha256_prefix)]}, not {source.sha256_prefix}.{why}")


def check_loads(name: str, path: str | Path) -> None:
    """Load the file strictly into the architecture (WeightsError when it does not fit)."""
    from .architectures import load_imagenet_weights

    load_imagenet_weights(name, path)


# --- staging: copy in while hashing ---------------------------------------------------------------

def _copy_hashing(stream: BinaryIO, dest: Path, progress: Progress | None = None,
                  total: int | None = None) -> tuple[str, int]:
    digest, done = hashlib.sha256(), 0
    with open(dest, "wb") as out:
        while True:
            read = getattr(stream, "read1", stream.read)  # read1: whatever has arrived (progress)
            chunk = read(CHUNK)
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest(), done


def stage(name: str, stream: BinaryIO) -> Staged:
    """Copy a file (an upload, a local file) under .incoming/ and check its hash. WeightsError (and
    nothing kept) when it is not the official file."""
    _source(name)
    part = new_part_file(name)
    try:
        sha256, size = _copy_hashing(stream, part)
        check_hash(name, sha256, size)
    except BaseException:
        discard(part)
        raise
    return Staged(name, part, sha256, size)


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest(), path.stat().st_size


def install_staged(name: str, path: str | Path, source: str) -> Path:
    """Check a staged file again (hash, strict load) and move it to its official name: the network is
    installed. `source` says where it came from (kept beside it). The staged file is gone afterwards,
    installed or deleted."""
    path = Path(path)
    try:
        if not path.is_file():
            raise WeightsError("The file to install is gone (it was already installed or cleaned up).")
        sha256, size = _hash_file(path)
        check_hash(name, sha256, size)
        check_loads(name, path)
        final = weights_path(name)
        about = {"network": name, "file": final.name, "sha256": sha256, "bytes": size, "source": source,
                 "installed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        sidecar = incoming_dir() / f"{path.name}.json"
        sidecar.write_text(json.dumps(about, indent=2))
        os.replace(sidecar, sidecar_path(name))
        os.replace(path, final)
    except BaseException:
        discard(path)
        raise
    log.info("installed weights of %s (%s, %d bytes) from %s", name, final.name, size, source)
    return final


def install_file(name: str, file_path: str | Path, source: str | None = None) -> Path:
    """Install a weights file brought along (e.g. `flask weights import`); the original is left as is."""
    try:
        with open(file_path, "rb") as fh:
            staged = stage(name, fh)
    except OSError as exc:
        raise WeightsError(f"Cannot read {file_path}: {exc.strerror or exc}.") from None
    return install_staged(name, staged.path, source or f"file {Path(file_path).name}")


# --- downloading -----------------------------------------------------------------------------------

def _open(url: str, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "image-classifier-studio"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (https URL from the catalogue)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection
        raise WeightsError(f"The download failed: {url} answered {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(f"Could not reach {url} ({reason}). This server may have no internet access: download "
                           "the file on a computer that has, then upload it on Admin → Networks (or install it "
                           "with `flask weights import`).") from None


def download(name: str, progress: Progress | None = None, url: str | None = None,
             timeout: float = 30.0) -> Path:
    """Stream the official weights file (or `url`) into .incoming/ with progress, check it and install it.
    WeightsError (and nothing kept) when it cannot be fetched, stops early or fails a check."""
    url = url or _source(name).weights.url
    part = new_part_file(name)
    try:
        with _open(url, timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            try:
                _, size = _copy_hashing(response, part, progress, total)
            except (HTTPException, OSError) as exc:
                raise WeightsError(f"The download broke off ({type(exc).__name__}). Nothing was installed; "
                                   "try again.") from None
        if total is not None and size != total:
            raise WeightsError(f"The download stopped early: {size:,} of {total:,} bytes arrived. "
                               "Nothing was installed; try again.")
    except BaseException:
        discard(part)
        raise
    return install_staged(name, part, f"download {url}")


def installed_details(name: str) -> dict | None:
    """Size on disk and what install_staged() recorded, for an installed file (None when not installed)."""
    path = weights_path(name)
    if path is None or not path.is_file():
        return None
    try:
        about = json.loads(sidecar_path(name).read_text())
    except (OSError, ValueError):
        about = {"source": "placed in the folder by hand (not checked by the studio)"}
    return {**about, "bytes": path.stat().st_size, "path": str(path)}
