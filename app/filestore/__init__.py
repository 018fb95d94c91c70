"""Where stored files live: a local folder (the default) or an S3-compatible bucket.

Both backends speak in keys, the same relative names in either place:

    images/ab/<sha256>        original image bytes, stored once however often uploaded
    thumbs/ab/<sha256>.webp   thumbnail made once at upload
    models/<run id>/<file>    a training run's artifacts (weights, model card, TorchScript, ONNX)
    uploads/<import id>/...   an upload waiting to be imported by a job (removed when the import ends)
    health/<dataset>.json     state and reports of background jobs (app.jobs.state)
    suggestions/<dataset>.json

and give code that needs a real file (torch, ONNX Runtime, Pillow, zipfile) a local path: for the
local backend the stored file itself, for S3 a copy fetched into a bounded LRU cache under
STORAGE_DIR/cache/objects. Writers build files in work_dir() and put them; for the local backend the
work folder is the final place and put is a no-op.

Never in the bucket, always under the local STORAGE_DIR of the machine that uses them (rebuilt when
missing): cached backbone features (cache/features/<dataset>/, memory-mapped and appended to),
backbones exported to ONNX (cache/backbones/) and uploads being received (uploads/incoming/).

Flask-free: app/storage.py builds the store from the app's configuration.
"""
from __future__ import annotations

from app.filestore.base import StorageError, Store
from app.filestore.keys import image_key, import_prefix, run_key, run_prefix, thumb_key
from app.filestore.local import LocalStore

__all__ = ["LocalStore", "StorageError", "Store", "image_key", "import_prefix", "make_store", "run_key",
           "run_prefix", "thumb_key"]


def make_store(url: str, local_root: str, *, cache_bytes: int = 10 * 2**30, s3_options: dict | None = None) -> Store:
    """The store STORAGE_URL names: '' (files under local_root) or 's3://bucket/prefix'."""
    if not url:
        return LocalStore(local_root)
    if url.startswith("s3://"):
        from app.filestore.s3 import S3Connection, S3Store  # boto3 is imported only when a bucket is configured

        return S3Store(url, local_root, cache_bytes=cache_bytes, connection=S3Connection(**(s3_options or {})))
    raise StorageError(f"STORAGE_URL must be empty (files in STORAGE_DIR) or s3://bucket/prefix, not {url!r}.")
