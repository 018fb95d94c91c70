"""Loading exported artifacts and predicting on uploaded images."""
from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from . import data
from .errors import BadImage
from .export import FILES, quiet_torch_deprecations
from .pillow_open import open_header
from .runtime import batch_shapes, padded_rows, padded_size, resolve_device
from .words import N_

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 40_000_000


NOT_AN_IMAGE = N_("The file is not an image we can read (use JPEG, PNG, GIF, WebP or BMP), or it is far too large.")
DAMAGED = N_("The image file is damaged or incomplete.")


def decode_image(data_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                 image_size: int | None = None) -> Image.Image:
    """Bytes -> RGB PIL image (EXIF orientation applied, first frame of animations).

    With image_size, a large JPEG is decoded at a reduced scale that still holds every pixel a
    model of that input size needs: the decode training uses (data.reduce_on_decode).
    Raises BadImage with a plain message for empty, unreadable, truncated or oversized input.
    The size is checked from the header, before the pixels are decoded.
    """
    return read_pixels(open_image(data_bytes, max_pixels, image_size))


def open_image(data_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, image_size: int | None = None) -> Image.Image:
    """The first half of decode_image: the header read and checked, the JPEG draft scale chosen, no
    pixels read yet (img.size is what decoding will make). Raises BadImage."""
    if not data_bytes:
        raise BadImage.because(N_("The file is empty."))
    try:
        img = open_header(io.BytesIO(data_bytes))
        width, height = img.size
        if width * height > max_pixels:
            raise BadImage.because(N_("The image is too large (%(width)sx%(height)s pixels; the limit is "
                                      "%(limit)s pixels)."),
                                   width=str(width), height=str(height), limit=int(max_pixels))  # 4000x3000, no commas
        img.seek(0)
        data.decode_in_one_call(img, len(data_bytes))
        data.reduce_on_decode(img, image_size)
        return img
    except BadImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise BadImage.because(NOT_AN_IMAGE) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        log.info("could not decode image: %s", exc)
        raise BadImage.because(DAMAGED) from None


def read_pixels(img: Image.Image) -> Image.Image:
    """The second half of decode_image: an image from open_image -> RGB, EXIF orientation applied."""
    try:
        img.load()
        return data.oriented_rgb(img)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        log.info("could not decode image: %s", exc)
        raise BadImage.because(DAMAGED) from None


def top_k(probs_row: Sequence[float], k: int = 5, classes: Sequence[str] | None = None) -> list[tuple]:
    """Highest k (index, probability) pairs, best first; (label, index, probability) with classes."""
    row = np.asarray(probs_row, dtype=np.float64)
    order = np.argsort(-row, kind="stable")[: max(0, k)]
    if classes is None:
        return [(int(i), float(row[i])) for i in order]
    return [(classes[i], int(i), float(row[i])) for i in order]


class Predictor:
    """A loaded model plus its preprocessing. Build with Predictor.load(artifact_dir).

    The steps are public so a server can spread them out: decode + crop each upload (prepare,
    parallel per image), normalize the stacked crops, run one batch (probabilities).
    """

    def __init__(self, card: dict, backend: str, runner, device: torch.device):
        self.card = card
        self.classes: list[str] = list(card["classes"])
        self.image_size: int = int(card["input"]["size"])
        self.mean = tuple(card["input"]["mean"])
        self.std = tuple(card["input"]["std"])
        self.backend = backend
        self.precision = "fp32"
        self.device = device
        self._run = runner
        std = np.asarray(self.std, dtype=np.float64).reshape(1, 3, 1, 1)
        # (x / 255 - mean) / std as one multiply-add
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._offset = (-np.asarray(self.mean, dtype=np.float64).reshape(1, 3, 1, 1) / std).astype(np.float32)

    @classmethod
    def load(cls, artifact_dir: str | Path, backend: str = "auto",
             device: str | torch.device | None = None, threads: int = 0,
             spinning: bool = False, precision: str = "fp32") -> "Predictor":
        """device None: CUDA when present, else CPU. backend 'auto': ONNX Runtime on the CPU when
        model.onnx exists, TorchScript otherwise. threads: ONNX Runtime threads (0 = all cores).
        spinning: let idle ONNX Runtime threads busy-wait for the next operation (a little faster
        alone, but they then take the cores that decoding and other requests need).
        precision (torch backend): 'fp32', 'bf16', or 'auto' = bf16 on a GPU that supports it."""
        root = Path(artifact_dir)
        card = json.loads((root / FILES["card"]).read_text())
        dev = resolve_device(device)
        if backend == "auto":
            backend = "onnx" if dev.type == "cpu" and (root / FILES["onnx"]).exists() else "torch"
        if backend == "onnx":
            return cls(card, "onnx", _onnx_runner(root / FILES["onnx"], threads, spinning), torch.device("cpu"))
        if backend == "torch":
            bf16 = precision == "bf16" or (precision == "auto" and dev.type == "cuda" and torch.cuda.is_bf16_supported())
            predictor = cls(card, "torch", _torch_runner(root / FILES["torchscript"], dev, bf16), dev)
            predictor.precision = "bf16" if bf16 else "fp32"
            return predictor
        raise ValueError(f"unknown backend {backend!r}")

    # --- one image ------------------------------------------------------------------------------

    def decode(self, data_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
        """Uploaded bytes -> RGB image, decoded as training decodes (raises BadImage)."""
        return decode_image(data_bytes, max_pixels, self.image_size)

    def crop(self, image: Image.Image) -> np.ndarray:
        """RGB image -> uint8 [3,size,size]: exactly the evaluation transform of training (a channels-
        first view of the crop's pixels: normalize and np.stack read it as it is, no torch on the way)."""
        return np.asarray(data.eval_crop_image(data.as_rgb(image), self.image_size)).transpose(2, 0, 1)

    def open(self, data_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
        """Uploaded bytes -> the opened image (header checked, draft scale set, no pixels read; raises
        BadImage): what prepare_opened takes, its size what decoding costs."""
        return open_image(data_bytes, max_pixels, self.image_size)

    def prepare_opened(self, img: Image.Image) -> np.ndarray:
        """An image from open -> uint8 [3,size,size] ready to be batched (raises BadImage)."""
        return self.crop(read_pixels(img))

    def prepare(self, data_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """Uploaded bytes -> uint8 [3,size,size] ready to be batched (raises BadImage)."""
        return self.prepare_opened(self.open(data_bytes, max_pixels))

    # --- a batch --------------------------------------------------------------------------------

    def normalize(self, crops: np.ndarray | Sequence[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
        """uint8 crops [N,3,size,size] (or a list of [3,size,size]) -> float32 model input,
        written into `out` when given (e.g. one row of a batch being filled by several threads)."""
        batch = crops if isinstance(crops, np.ndarray) else np.stack(crops)
        if out is None:
            out = np.empty(batch.shape, dtype=np.float32)
        np.multiply(batch, self._scale, out=out)  # straight into float32: no astype copy
        np.add(out, self._offset, out=out)
        return out

    def probabilities(self, batch: np.ndarray, max_batch: int = 32) -> np.ndarray:
        """Normalised input [N,3,size,size] -> softmax probabilities [N, classes], max_batch at a time."""
        if len(batch) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        out = []
        for start in range(0, len(batch), max(1, max_batch)):
            logits = self._forward(np.ascontiguousarray(batch[start:start + max_batch]), max_batch)
            exp = np.exp(logits - logits.max(axis=1, keepdims=True))
            out.append((exp / exp.sum(axis=1, keepdims=True)).astype(np.float32))
        return np.concatenate(out)

    def _forward(self, chunk: np.ndarray, max_batch: int) -> np.ndarray:
        """Logits of one chunk; on a GPU run at its padded batch size (see batch_shapes)."""
        n = len(chunk)
        if self.device.type == "cuda":
            chunk = padded_rows(chunk, padded_size(n, max_batch))
        return np.asarray(self._run(chunk))[:n]

    def warm_up(self, max_batch: int) -> float:
        """On a GPU, run every batch shape a forward pass can take (see batch_shapes) once, in the calling
        thread, so no request pays for a new shape; returns the seconds it took (0 on a CPU)."""
        if self.device.type != "cuda":
            return 0.0
        started = time.perf_counter()
        for size in batch_shapes(max_batch):
            self._run(np.zeros((size, 3, self.image_size, self.image_size), dtype=np.float32))
        return time.perf_counter() - started

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB PIL images -> float32 [N,3,size,size] model input."""
        return self.normalize([self.crop(img) for img in images])

    def predict_proba(self, images: Sequence[Image.Image], max_batch: int = 32) -> np.ndarray:
        """Softmax probabilities [N, num_classes] in the order of self.classes."""
        if not images:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return self.probabilities(self.preprocess(images), max_batch)


def _onnx_runner(path: Path, threads: int = 0, spinning: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, int(threads))
    if not spinning:  # measured: batches of decode + forward 8% faster without it on 2 cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def _torch_runner(path: Path, device: torch.device, bf16: bool = False):
    """TorchScript on `device`; with bf16 the forward runs under bfloat16 autocast (checked against
    float32 by serving before it is used).

    The graph runs without TorchScript's optimising executor: that executor profiles and re-specialises
    the graph for every new batch shape, and served batches come in every size from 1 up, so each new
    size paid a slow first call (measured on an H100: the first batch of 256 ran at 144 images/s
    against 4,500 warm). The work is in the convolutions (cuDNN/oneDNN) either way."""
    with quiet_torch_deprecations():
        module = torch.jit.load(str(path), map_location=device).eval()
    layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format

    def run(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(device, non_blocking=True).contiguous(memory_format=layout)
        with torch.jit.optimized_execution(False), torch.inference_mode(), \
                torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return module(x).float().cpu().numpy()

    return run
