"""What every storage backend offers (see app/filestore/__init__.py for the keys)."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Iterator


class StorageError(RuntimeError):
    """The configured storage cannot be used (no such bucket, refused credentials, bad STORAGE_URL)."""


class Store:
    """The interface; LocalStore and S3Store implement it. `local_root` is this machine's STORAGE_DIR."""

    remote = False  # True when stored files live elsewhere (reads may fetch, local paths are copies)

    def __init__(self, local_root: str | Path):
        self.local_root = Path(local_root)

    # --- folders that stay on this machine --------------------------------------------------------

    def feature_dir(self, dataset_id: int) -> Path:
        """The dataset's feature stores (app.ml.feature_layout): local files, rebuilt when missing."""
        return self.local_root / "cache" / "features" / str(int(dataset_id))

    @property
    def backbone_dir(self) -> Path:
        """Pretrained backbones exported to ONNX once per network and image size (local, rebuilt)."""
        return self.local_root / "cache" / "backbones"

    @property
    def incoming_dir(self) -> Path:
        """Where an upload is written while it is checked, before it has an import id."""
        return self.local_root / "uploads" / "incoming"

    # --- the interface ----------------------------------------------------------------------------

    def describe(self) -> str:
        """Where files are kept, for logs and messages."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise StorageError with a plain message when the store cannot be used."""

    def ref(self, key: str) -> str:
        """A name app.ml.files.local_file() turns into a readable local path."""
        raise NotImplementedError

    def local_path(self, key: str) -> Path:
        """A local file holding the object (FileNotFoundError when there is none)."""
        raise NotImplementedError

    def local_dir(self, prefix: str, skip: tuple[str, ...] = ()) -> Path:
        """A local folder holding every object under prefix/ (e.g. a model's files); a bucket's objects
        whose name ends with one of `skip` are not fetched (e.g. a checkpoint serving never reads)."""
        raise NotImplementedError

    def checkout(self, prefix: str) -> Path:
        """A local folder holding the objects under prefix/ for one job (an upload being imported);
        discard_work(prefix) removes the copy (local backend: the stored folder itself, kept)."""
        raise NotImplementedError

    def work_dir(self, prefix: str) -> Path:
        """A local folder to build files in that put_dir(prefix, folder) then stores."""
        raise NotImplementedError

    def put_dir(self, prefix: str, folder: Path) -> None:
        """Store every file of folder under prefix/ (the folder is left to the caller)."""
        raise NotImplementedError

    def discard_work(self, prefix: str) -> None:
        """Remove what work_dir(prefix) holds once it is stored or abandoned (local: it is the store)."""

    def put_file(self, key: str, path: Path) -> None:
        raise NotImplementedError

    def write(self, key: str, data: bytes) -> None:
        """Store bytes under key, all or nothing."""
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError

    def open(self, key: str) -> BinaryIO:
        """A stream of the object's bytes (FileNotFoundError when there is none); close it after use."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def size(self, key: str) -> int:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove one object; a missing one is fine."""
        raise NotImplementedError

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under prefix/; returns how many."""
        raise NotImplementedError

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under prefix/."""
        raise NotImplementedError

    def download_url(self, key: str, filename: str, seconds: int) -> str | None:
        """A short-lived URL the browser can fetch the object from directly (None: serve it ourselves)."""
        return None
