"""The default backend: stored files are plain files under STORAGE_DIR."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator

from app.filestore.base import Store
from app.ml.files import write_atomic
from app.filestore.keys import check_key


class LocalStore(Store):
    """Keys are paths under root; local paths are the stored files themselves."""

    def __init__(self, root: str | Path):
        super().__init__(root)
        self.root = self.local_root

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def describe(self) -> str:
        return f"the folder {self.root}"

    def ref(self, key: str) -> str:
        return str(self.path(key))

    def local_path(self, key: str) -> Path:
        return self.path(key)

    def local_dir(self, prefix: str, skip: tuple[str, ...] = ()) -> Path:
        return self.path(prefix)

    def checkout(self, prefix: str) -> Path:
        return self.path(prefix)

    def work_dir(self, prefix: str) -> Path:
        return self.path(prefix)

    def put_dir(self, prefix: str, folder: Path) -> None:
        target = self.path(prefix)
        if Path(folder).resolve() == target.resolve():
            return
        for source in sorted(Path(folder).rglob("*")):
            if source.is_file():
                self.put_file(f"{prefix}/{source.relative_to(folder).as_posix()}", source)

    def put_file(self, key: str, path: Path) -> None:
        target = self.path(key)
        if Path(path).resolve() == target.resolve():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)

    def write(self, key: str, data: bytes) -> None:
        write_atomic(self.path(key), data)

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        folder = self.path(prefix)
        count = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
        shutil.rmtree(folder, ignore_errors=True)
        return count

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        folder = self.path(prefix)
        if not folder.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(".tmp-"):
                    continue  # a write in progress
                path = Path(dirpath) / name
                yield path.relative_to(self.root).as_posix(), path.stat().st_size
