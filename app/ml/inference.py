"""Loading exported artifacts and predicting on uploaded images."""
from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from . import data
from .errors import BadImage
from .export import FILES, quiet_torch_deprecations
from .runtime import resolve_device

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 40_000_000


def decode_image(data_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Bytes -> RGB PIL image (EXIF orientation applied, first frame of animations).

    Raises BadImage with a plain message for empty, unreadable, truncated or oversized input.
    The size is checked from the header, before the pixels are decoded.
    """
    if not data_bytes:
        raise BadImage("The file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data_bytes))
            width, height = img.size
            if width * height > max_pixels:
                raise BadImage(f"The image is too large ({width}x{height} pixels; the limit is "
                               f"{max_pixels:,} pixels).")
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            return img.convert("RGB")
    except BadImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("The file is not an image we can read (use JPEG, PNG, GIF, WebP or BMP), "
                       "or it is far too large.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        log.info("could not decode image: %s", exc)
        raise BadImage("The image file is damaged or incomplete.") from None


def top_k(probs_row: Sequence[float], k: int = 5, classes: Sequence[str] | None = None) -> list[tuple]:
    """Highest k (index, probability) pairs, best first; (label, index, probability) with classes."""
    row = np.asarray(probs_row, dtype=np.float64)
    order = np.argsort(-row, kind="stable")[: max(0, k)]
    if classes is None:
        return [(int(i), float(row[i])) for i in order]
    return [(classes[i], int(i), float(row[i])) for i in order]


class Predictor:
    """A loaded model plus its preprocessing. Build with Predictor.load(artifact_dir)."""

    def __init__(self, card: dict, backend: str, runner, device: torch.device):
        self.card = card
        self.classes: list[str] = list(card["classes"])
        self.image_size: int = int(card["input"]["size"])
        self.mean = tuple(card["input"]["mean"])
        self.std = tuple(card["input"]["std"])
        self.backend = backend
        self.device = device
        self._run = runner

    @classmethod
    def load(cls, artifact_dir: str | Path, backend: str = "auto",
             device: str | torch.device | None = None) -> "Predictor":
        """backend 'auto': ONNX Runtime on CPU when model.onnx exists, TorchScript otherwise."""
        root = Path(artifact_dir)
        card = json.loads((root / FILES["card"]).read_text())
        dev = resolve_device(device) if device is not None or backend == "torch" else torch.device("cpu")
        if backend == "auto":
            backend = "onnx" if dev.type == "cpu" and (root / FILES["onnx"]).exists() else "torch"
        if backend == "onnx":
            return cls(card, "onnx", _onnx_runner(root / FILES["onnx"]), torch.device("cpu"))
        if backend == "torch":
            if device is None:
                dev = resolve_device(None)
            return cls(card, "torch", _torch_runner(root / FILES["torchscript"], dev), dev)
        raise ValueError(f"unknown backend {backend!r}")

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB PIL images -> float32 [N,3,size,size], exactly the evaluation transform of training."""
        crops = torch.stack([data.preprocess_pil(img, self.image_size) for img in images])
        return data.normalize(crops, self.mean, self.std).numpy()

    def predict_proba(self, images: Sequence[Image.Image], max_batch: int = 32) -> np.ndarray:
        """Softmax probabilities [N, num_classes] in the order of self.classes."""
        if not images:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        out = []
        for start in range(0, len(images), max_batch):
            logits = self._run(self.preprocess(images[start:start + max_batch]))
            exp = np.exp(logits - logits.max(axis=1, keepdims=True))
            out.append((exp / exp.sum(axis=1, keepdims=True)).astype(np.float32))
        return np.concatenate(out)


def _onnx_runner(path: Path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def _torch_runner(path: Path, device: torch.device):
    with quiet_torch_deprecations():
        module = torch.jit.load(str(path), map_location=device).eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    return run
