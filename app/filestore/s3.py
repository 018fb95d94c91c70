"""S3-compatible object storage (AWS S3, MinIO, R2, GCS interoperability...) through boto3.

Objects are named <prefix>/<key> in the bucket. Reads that need a file fetch a copy into the LRU
cache under STORAGE_DIR/cache/objects; writers put files built locally. Credentials come from boto3's
usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an instance role) unless given."""
from __future__ import annotations

import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator
from urllib.parse import quote, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from app.filestore.base import StorageError, Store
from app.filestore.cache import ObjectCache
from app.filestore.keys import check_key

MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
STREAM_CHUNK = 1 << 20
REFUSED_CODES = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
                 "ExpiredToken", "AllAccessDisabled"}


def parse_url(url: str) -> tuple[str, str]:
    """('bucket', 'prefix/' or '') from s3://bucket/prefix."""
    parts = urlsplit(url)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if parts.scheme != "s3" or not bucket:
        raise StorageError(f"STORAGE_URL must look like s3://bucket/prefix, not {url!r}.")
    return bucket, (prefix + "/" if prefix else "")


def _missing(err: ClientError) -> bool:
    return str(err.response.get("Error", {}).get("Code")) in MISSING_CODES


@dataclass(frozen=True)
class S3Connection:
    """How to reach the bucket; None: boto3's default (AWS endpoints, credentials from its usual chain).
    public_endpoint_url: the endpoint presigned download URLs name, when browsers reach it elsewhere."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    public_endpoint_url: str | None = None


class S3Store(Store):
    remote = True

    def __init__(self, url: str, local_root: str | Path, *, cache_bytes: int, connection: S3Connection):
        super().__init__(local_root)
        self.url = url
        self.bucket, self.prefix = parse_url(url)
        self.endpoint_url = connection.endpoint_url or None
        self.public_endpoint_url = connection.public_endpoint_url or None
        self._settings = {"region_name": connection.region or None, "aws_access_key_id": connection.access_key or None,
                          "aws_secret_access_key": connection.secret_key or None}
        self.cache = ObjectCache(self.local_root / "cache" / "objects", cache_bytes)
        self._clients: dict[tuple, object] = {}
        self._clients_lock = threading.Lock()
        self._dirs: dict[str, list[str]] = {}  # prefix -> keys fetched by local_dir in this process

    # --- connection -------------------------------------------------------------------------------

    def client(self, public: bool = False):
        """This process's client (boto3 clients are not fork-safe: a forked job makes its own)."""
        endpoint = (self.public_endpoint_url if public else None) or self.endpoint_url
        key = (os.getpid(), endpoint)
        with self._clients_lock:
            if key not in self._clients:
                config = Config(signature_version="s3v4", connect_timeout=5, read_timeout=60,
                                retries={"max_attempts": 3, "mode": "standard"},
                                s3={"addressing_style": "path" if endpoint else "auto"})
                session = boto3.session.Session()
                self._clients[key] = session.client("s3", endpoint_url=endpoint, config=config, **self._settings)
            return self._clients[key]

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def check(self) -> None:
        """A HEAD of the bucket, then a tiny object written and removed again: a missing bucket, refused
        credentials, a read-only key or an unreachable endpoint stop start-up with a sentence saying which."""
        where = f"bucket '{self.bucket}'" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        probe = f"{self.prefix}.write-check/{uuid.uuid4().hex}"
        step = "read"
        try:
            self.client().head_bucket(Bucket=self.bucket)
            step = "write"
            self.client().put_object(Bucket=self.bucket, Key=probe, Body=b"")
            self.client().delete_object(Bucket=self.bucket, Key=probe)
        except NoCredentialsError:
            raise StorageError(f"No credentials for the {where}: set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY (or an AWS profile / instance role).") from None
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code"))
            raise StorageError(self._refusal(where, step, code, err)) from None
        except BotoCoreError as err:
            raise StorageError(f"Cannot reach the storage for the {where}: {err}.") from None

    def _refusal(self, where: str, step: str, code: str, err: ClientError) -> str:
        if step == "read" and code in MISSING_CODES | {"NoSuchBucket"}:
            return f"The {where} does not exist (STORAGE_URL={self.url}). Create it, or correct STORAGE_URL."
        if step == "write" and code in REFUSED_CODES:
            return (f"The credentials may read the {where} but not write to it ({code}): uploads and trained "
                    "models could not be stored. Give the key write access (s3:PutObject, s3:DeleteObject).")
        if code in REFUSED_CODES:
            return (f"The storage endpoint refused the credentials for the {where} ({code}). "
                    "Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.")
        return f"The {where} cannot be used: {code} {err}."

    # --- names ------------------------------------------------------------------------------------

    def name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def ref(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.name(key)}"

    def resolve_ref(self, ref: str) -> str:
        """The local path of an s3:// reference (app.ml.files resolver): fetched into the cache."""
        parts = urlsplit(ref)
        return str(self._cached(parts.netloc, parts.path.lstrip("/")))

    # --- reading ----------------------------------------------------------------------------------

    def _cached(self, bucket: str, name: str) -> Path:
        def fetch(tmp: Path) -> None:
            # one GET streamed to the file: lighter than download_file's transfer manager for the small
            # objects (images) most reads are
            try:
                body = self.client().get_object(Bucket=bucket, Key=name)["Body"]
            except ClientError as err:
                if _missing(err):
                    raise FileNotFoundError(f"s3://{bucket}/{name}") from None
                raise
            with body, open(tmp, "wb") as out:
                shutil.copyfileobj(body, out, STREAM_CHUNK)

        return self.cache.get(f"{bucket}/{name}", fetch)

    def local_path(self, key: str) -> Path:
        return self._cached(self.bucket, self.name(key))

    def local_dir(self, prefix: str, skip: tuple[str, ...] = ()) -> Path:
        folder = self.cache.path(f"{self.bucket}/{self.name(prefix)}")
        known = self._dirs.get(prefix)
        if known and all(self.cache.lookup(f"{self.bucket}/{self.name(k)}") for k in known):
            return folder  # fetched before by this process and still cached: no request at all
        keys = [key for key, _ in self.list(prefix) if not key.endswith(skip)]
        for key in keys:
            self.local_path(key)
        self._dirs[prefix] = keys
        return folder

    def read(self, key: str) -> bytes:
        with self.open(key) as body:
            return body.read()

    def open(self, key: str) -> BinaryIO:
        try:
            return self.client().get_object(Bucket=self.bucket, Key=self.name(key))["Body"]
        except ClientError as err:
            if _missing(err):
                raise FileNotFoundError(self.ref(key)) from None
            raise

    def _head(self, key: str) -> dict | None:
        try:
            return self.client().head_object(Bucket=self.bucket, Key=self.name(key))
        except ClientError as err:
            if _missing(err):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise FileNotFoundError(self.ref(key))
        return int(head["ContentLength"])

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.name(prefix).rstrip("/") + "/")
        for page in pages:
            for item in page.get("Contents", ()):
                yield item["Key"][len(self.prefix):], int(item["Size"])

    def download_url(self, key: str, filename: str, seconds: int) -> str | None:
        disposition = f"attachment; filename*=UTF-8''{quote(filename)}"
        return self.client(public=True).generate_presigned_url(
            "get_object", ExpiresIn=int(seconds),
            Params={"Bucket": self.bucket, "Key": self.name(key), "ResponseContentDisposition": disposition})

    # --- writing ----------------------------------------------------------------------------------

    def work_dir(self, prefix: str) -> Path:
        folder = self.local_root / "work" / check_key(prefix)
        shutil.rmtree(folder, ignore_errors=True)  # left over from a job that died
        folder.mkdir(parents=True)
        return folder

    def checkout(self, prefix: str) -> Path:
        folder = self.work_dir(prefix)
        for key, _ in self.list(prefix):
            target = folder / key[len(prefix) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client().download_file(self.bucket, self.name(key), str(target))
        return folder

    def discard_work(self, prefix: str) -> None:
        shutil.rmtree(self.local_root / "work" / check_key(prefix), ignore_errors=True)

    def put_file(self, key: str, path: Path) -> None:
        self.client().upload_file(str(path), self.bucket, self.name(key))
        self.cache.drop(f"{self.bucket}/{self.name(key)}")

    def put_dir(self, prefix: str, folder: Path) -> None:
        for source in sorted(Path(folder).rglob("*")):
            if source.is_file():
                self.put_file(f"{prefix}/{source.relative_to(folder).as_posix()}", source)
        self._dirs.pop(prefix, None)

    def write(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=self.name(key), Body=data)
        self.cache.drop(f"{self.bucket}/{self.name(key)}")

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket, Key=self.name(key))
        self.cache.drop(f"{self.bucket}/{self.name(key)}")

    def delete_prefix(self, prefix: str) -> int:
        keys = [key for key, _ in self.list(prefix)]
        for start in range(0, len(keys), 1000):  # the most one DeleteObjects request takes
            chunk = keys[start:start + 1000]
            self.client().delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": self.name(k)} for k in chunk], "Quiet": True})
        for key in keys:
            self.cache.drop(f"{self.bucket}/{self.name(key)}")
        self._dirs.pop(prefix, None)
        return len(keys)
