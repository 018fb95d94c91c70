"""Getting pretrained weights files into the weights folder: downloaded or brought along, always checked.

Every file is first written under <weights folder>/.incoming/, then checked - the SHA-256 must start
with the prefix in the official file name (as torch.hub checks it), and the file must load strictly into
its architecture - and only then renamed to its official name, which is what makes the network
installed. A file that fails a check is deleted: nothing half-written is ever taken for installed.

With a shelf (app.ml.networks.set_weights_shelf: the bucket, when machines share no disk) an installed
file and its record are put on the shelf before the local rename, uploads wait there under .incoming/
for the worker that checks them, and a machine that needs a file fetches it into its own weights folder
(`local_copy`, hash checked again), which is then only a cache.

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
from .words import N_, joined, line
from .networks import NetworkSpec, spec, weights_dir, weights_path, weights_shelf

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
        raise WeightsError.because(N_("%(network)s has no weights file to install (its weights are built in).")
                                   if entry.pretrained else
                                   N_("%(network)s has no weights file to install (it learns from scratch)."),
                                   network=entry.label)
    return entry


def _folder() -> Path:
    folder = weights_dir()
    if folder is None:
        raise WeightsError.because(N_("No weights folder is configured (set WEIGHTS_DIR)."))
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
    said = [line(N_("This is not the %(network)s weights file %(file)s: its SHA-256 starts with %(got)s, "
                    "not %(expected)s."), network=spec(name).label, file=source.file_name,
                 got=sha256[:len(source.sha256_prefix)], expected=source.sha256_prefix)]
    sizes = {"size_bytes": size, "expected_bytes": source.size_bytes}
    if size < 0.99 * source.size_bytes:
        said.append(line(N_("It is %(size_bytes)s where %(expected_bytes)s was expected: it is incomplete or another "
                            "file."),
                         **sizes))
    elif size > 1.01 * source.size_bytes:
        said.append(line(N_("It is %(size_bytes)s where %(expected_bytes)s was expected: it is another file."),
                         **sizes))
    raise WeightsError.saying(said[0] if len(said) == 1 else joined(*said))




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


def install_staged(name: str, path: str | Path, source: str | dict) -> Path:
    """Check a staged file again (hash, strict load) and move it to its official name: the network is
    installed. `source` says where it came from (kept beside it: its text, and when it is an
    app.ml.words line also the line, which the Networks page shows in the reader's language). The staged
    file is gone afterwards, installed or deleted."""
    source_line = source if isinstance(source, dict) else None
    source = source_line["message"] if source_line else source
    path = Path(path)
    try:
        if not path.is_file():
            raise WeightsError.because(N_("The file to install is gone (it was already installed or cleaned up)."))
        sha256, size = _hash_file(path)
        check_hash(name, sha256, size)
        check_loads(name, path)
        final = weights_path(name)
        about = {"network": name, "file": final.name, "sha256": sha256, "bytes": size, "source": source,
                 "installed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        if source_line:
            about["source_line"] = source_line
        sidecar = incoming_dir() / f"{path.name}.json"
        sidecar.write_text(json.dumps(about, indent=2))
        shelf = weights_shelf()
        if shelf is not None:  # the record first: the file's presence is what says "installed"
            shelf.put(sidecar_path(name).name, sidecar)
            shelf.put(final.name, path)
        os.replace(sidecar, sidecar_path(name))
        os.replace(path, final)
    except BaseException:
        discard(path)
        raise
    log.info("installed weights of %s (%s, %d bytes) from %s", name, final.name, size, source)
    return final


def install_file(name: str, file_path: str | Path, source: str | dict | None = None) -> Path:
    """Install a weights file brought along (e.g. `flask weights import`); the original is left as is."""
    try:
        with open(file_path, "rb") as fh:
            staged = stage(name, fh)
    except OSError as exc:
        raise WeightsError.because(N_("Cannot read %(path)s: %(reason)s."), path=str(file_path),
                                   reason=str(exc.strerror or exc)) from None
    source = source or line(N_("from the file %(file)s"), file=Path(file_path).name)
    return install_staged(name, staged.path, source)


# --- downloading -----------------------------------------------------------------------------------

def _open(url: str, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "image-classifier-studio"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (https URL from the catalogue)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection
        raise WeightsError.because(N_("The download failed: %(url)s answered %(code)s %(reason)s."), url=url,
                                   code=str(exc.code), reason=str(exc.reason)) from None
    except (urllib.error.URLError, HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError.because(N_("Could not reach %(url)s (%(reason)s). This server may have no internet "
                                      "access: download the file on a computer that has, then upload it on Admin → "
                                      "Networks (or install it with `flask weights import`)."),
                                   url=url, reason=str(reason)) from None


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
                raise WeightsError.because(N_("The download broke off (%(error)s). Nothing was installed; "
                                              "try again."), error=type(exc).__name__) from None
        if total is not None and size != total:
            raise WeightsError.because(N_("The download stopped early: %(size)s of %(total)s bytes arrived. "
                                          "Nothing was installed; try again."), size=size, total=total)
    except BaseException:
        discard(part)
        raise
    return install_staged(name, part, line(N_("downloaded from %(url)s"), url=url))


def _by_hand(template: str) -> dict:
    said = line(template)
    return {"source": said["message"], "source_line": said}


def installed_details(name: str) -> dict | None:
    """Size and what install_staged() recorded, for an installed file (None when not installed)."""
    shelf, path = weights_shelf(), weights_path(name)
    if shelf is not None:
        size = shelf.installed().get(_source(name).weights.file_name) if path is not None else None
        if size is None:
            return None
        try:
            about = json.loads(shelf.read(sidecar_path(name).name))
        except (OSError, ValueError):
            about = _by_hand(N_("placed in the bucket by hand (not checked by the studio)"))
        return {**about, "bytes": size, "path": f"weights/{path.name}"}
    if path is None or not path.is_file():
        return None
    try:
        about = json.loads(sidecar_path(name).read_text())
    except (OSError, ValueError):
        about = _by_hand(N_("placed in the folder by hand (not checked by the studio)"))
    return {**about, "bytes": path.stat().st_size, "path": str(path)}


def uninstall(name: str) -> Path:
    """Remove the installed file and its record (from the shelf too: every machine then sees it gone and
    drops its copy when it next needs it). WeightsError when it is not installed."""
    shelf, path = weights_shelf(), weights_path(name)
    on_shelf = shelf is not None and path is not None and path.name in shelf.installed(fresh=True)
    if path is None or not (on_shelf or path.is_file()):
        raise WeightsError.because(N_("%(network)s is not installed."), network=spec(name).label)
    if on_shelf:
        shelf.delete(path.name)
        shelf.delete(sidecar_path(name).name)
    path.unlink(missing_ok=True)
    sidecar_path(name).unlink(missing_ok=True)
    return path


# --- several machines: the shelf ------------------------------------------------------------------

STAGED_ON_SHELF = INCOMING + "/"


def share_staged(staged: Staged) -> None:
    """Put a staged upload on the shelf, for the worker (maybe on another machine) that installs it; the
    local copy goes. Without a shelf the weights folder is shared and the file stays where it is."""
    shelf = weights_shelf()
    if shelf is None:
        return
    try:
        shelf.put(STAGED_ON_SHELF + staged.path.name, staged.path)
    finally:
        discard(staged.path)


def staged_file(part_name: str) -> Path:
    """The local path of a staged upload, fetched from the shelf first when there is one (the path may
    not exist: install_staged() says the file is gone)."""
    path = incoming_dir() / Path(part_name).name
    shelf = weights_shelf()
    if shelf is not None and not path.is_file():
        try:
            shelf.get(STAGED_ON_SHELF + path.name, path)
        except FileNotFoundError:
            discard(path)
    return path


def discard_staged(part_name: str) -> None:
    """Delete a staged upload wherever it is (installed, failed or abandoned)."""
    name = Path(part_name).name
    discard(incoming_dir() / name)
    shelf = weights_shelf()
    if shelf is not None:
        shelf.delete(STAGED_ON_SHELF + name)


def local_copy(name: str) -> Path | None:
    """This machine's copy of an installed weights file, fetched from the shelf (and its hash checked)
    when missing or of another size; None when the shelf says it is not installed (a stale local copy,
    left from before an admin removed it, is deleted). Two processes fetching at once each write their
    own part file; the last rename wins with the same bytes."""
    shelf, path = weights_shelf(), weights_path(name)
    size = shelf.installed(fresh=True).get(path.name) if path is not None else None
    if size is None:
        if path is not None and path.is_file():
            path.unlink(missing_ok=True)
            sidecar_path(name).unlink(missing_ok=True)
            log.info("weights of %s are no longer installed: local copy %s removed", name, path)
        return None
    if path.is_file() and path.stat().st_size == size:
        return path
    part = new_part_file(name)
    try:
        shelf.get(path.name, part)
        sha256, got = _hash_file(part)
        try:
            check_hash(name, sha256, got)
        except WeightsError as exc:
            raise WeightsError.saying(joined(line(N_("The copy in the bucket is damaged.")),
                                             exc.line or {"message": exc.message})) from None
        os.replace(part, path)
    except BaseException:
        discard(part)
        raise
    log.info("weights of %s fetched from the shelf into %s (%d bytes)", name, path, got)
    return path


def share_folder(shelf) -> list[str]:
    """Put every file installed in this machine's weights folder (hash checked again) on `shelf`, where
    it is not yet: moving to a bucket (`flask storage migrate`). Returns the networks put there."""
    from .networks import CATALOGUE

    shared, there = [], shelf.installed(fresh=True)
    for name, entry in CATALOGUE.items():
        path = weights_path(name) if entry.weights is not None else None
        if path is None or not path.is_file() or there.get(path.name) == path.stat().st_size:
            continue
        sha256, size = _hash_file(path)
        check_hash(name, sha256, size)
        if sidecar_path(name).is_file():
            shelf.put(sidecar_path(name).name, sidecar_path(name))
        shelf.put(path.name, path)
        shared.append(name)
    return shared
