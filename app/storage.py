"""Content-addressed file storage under STORAGE_DIR.

images/ab/<sha256>        original image bytes, stored once however often uploaded
thumbs/ab/<sha256>.webp   thumbnail made once at upload
models/<run id>/          a training run's artifacts (weights, model card, TorchScript, ONNX)
cache/features/<dataset>/ backbone features of a dataset's images (quick mode, health, suggestions)
cache/backbones/          pretrained backbones exported to ONNX once per network and image size
uploads/<import id>/      an upload waiting to be imported by a job (removed when the import ends)
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import current_app


class Storage:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def image_path(self, sha256: str) -> Path:
        return self.root / "images" / sha256[:2] / sha256

    def thumb_path(self, sha256: str) -> Path:
        return self.root / "thumbs" / sha256[:2] / f"{sha256}.webp"

    def run_dir(self, run_id: int) -> Path:
        return self.root / "models" / str(run_id)

    def feature_dir(self, dataset_id: int) -> Path:
        """The dataset's feature stores (app.ml.feature_layout); removed with the dataset."""
        return self.root / "cache" / "features" / str(int(dataset_id))

    def upload_dir(self, import_id: int) -> Path:
        return self.root / "uploads" / str(import_id)

    @property
    def incoming_dir(self) -> Path:
        """Where an upload is written while it is checked, before it has an import id."""
        return self.root / "uploads" / "incoming"

    @property
    def backbone_dir(self) -> Path:
        return self.root / "cache" / "backbones"

    def write_atomic(self, path: Path, data: bytes) -> None:
        """Write via a temporary file + rename, so a crash never leaves a half-written file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def get_storage() -> Storage:
    return Storage(current_app.config["STORAGE_DIR"])
