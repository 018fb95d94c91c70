"""Copy a local store into a bucket (`flask storage migrate --to s3://...`).

Resumable: an object already in the bucket with the same size and the same content hash (the sha256
this copy records in the object's metadata, or the MD5 ETag of a single-part upload) is skipped, so a
run stopped halfway is simply started again. Every copy is verified: the bucket checks the MD5 sent
with the bytes (Content-MD5), and the object is read back (HEAD) to compare size and hash."""
from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from app.filestore.base import StorageError
from app.filestore.local import LocalStore
from app.filestore.s3 import S3Store

# What the app keeps in storage; caches, work folders and uploads being received are not copied.
STORED_FOLDERS = ("images", "thumbs", "models", "uploads", "health", "suggestions")
CHUNK = 1 << 20


@dataclass
class Progress:
    files: int = 0
    bytes: int = 0
    done: int = 0
    done_bytes: int = 0
    copied: int = 0
    skipped: int = 0
    damaged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _File:
    key: str
    path: Path
    size: int


def stored_files(source: LocalStore) -> Iterator[_File]:
    """Every stored file of the local store (uploads/incoming: still being received, left out)."""
    for folder in STORED_FOLDERS:
        for key, size in source.list(folder):
            if not key.startswith("uploads/incoming/"):
                yield _File(key, source.path(key), size)


def _digests(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def _same(head: dict | None, size: int, sha: str, md5: str) -> bool:
    if head is None or int(head.get("ContentLength", -1)) != size:
        return False
    return (head.get("Metadata") or {}).get("sha256") == sha or head.get("ETag", "").strip('"') == md5


def copy_one(target: S3Store, item: _File) -> str:
    """'copied', 'skipped' (already there, same content) or 'damaged' (an image whose bytes no longer
    match the hash it is named by: not copied)."""
    sha, md5 = _digests(item.path)
    if item.key.startswith("images/") and sha != item.key.rsplit("/", 1)[-1]:
        return "damaged"
    if _same(target._head(item.key), item.size, sha, md5):
        return "skipped"
    with open(item.path, "rb") as body:
        target.client().put_object(Bucket=target.bucket, Key=target.name(item.key), Body=body,
                                   ContentMD5=base64.b64encode(bytes.fromhex(md5)).decode(),
                                   Metadata={"sha256": sha})
    if not _same(target._head(item.key), item.size, sha, md5):
        raise StorageError(f"{item.key}: the copy in the bucket does not match the local file.")
    return "copied"


def migrate(source: LocalStore, target: S3Store, report: Callable[[Progress], None],
            threads: int = 8) -> Progress:
    """Copy every stored file of source into target; report(progress) after each file."""
    files = list(stored_files(source))
    progress = Progress(files=len(files), bytes=sum(f.size for f in files))
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for item, outcome in zip(files, pool.map(lambda f: copy_one(target, f), files)):
            progress.done += 1
            progress.done_bytes += item.size
            if outcome == "damaged":
                progress.damaged.append(item.key)
            else:
                setattr(progress, outcome, getattr(progress, outcome) + 1)
            report(progress)
    return progress
