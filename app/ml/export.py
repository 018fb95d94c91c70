"""Write a trained model out: state_dict, TorchScript, ONNX (verified with onnxruntime), model card."""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import logging
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .artifacts import FILES, PREPROCESS
from .errors import ExportMismatch
from .words import N_
from .reference import THRESHOLD_RULE, write_from_card

log = logging.getLogger(__name__)

CARD_FORMAT = 2  # 2: input gains decode_side, jpeg_draft, exif_transpose, reference; the exact steps
ONNX_OPSET = 17
RTOL, ATOL = 1e-3, 1e-4  # on softmax probabilities


@contextlib.contextmanager
def quiet_torch_deprecations():
    """torch 2.14 flags jit.trace and the TorchScript ONNX exporter as deprecated; they are the
    only exporters usable without onnxscript, so silence exactly those notices."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")  # Future- or DeprecationWarning by version
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*legacy TorchScript-based ONNX")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r"The feature will be removed")
        # ZeroPad2d (TF 'SAME' padding) exports as Pad whose pads come from a reversed Slice; the
        # exporter notes it cannot pre-compute that slice. The graph is still exact (verified below).
        warnings.filterwarnings("ignore", category=UserWarning, message=r"Constant folding - Only steps=1")
        yield


def library_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _cpu_eval_copy(model: torch.nn.Module) -> torch.nn.Module:
    model = copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def export_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    with quiet_torch_deprecations(), torch.no_grad():
        # check_trace re-traces and compares graphs (4 s for EfficientNet-B0 on 2 cores); verify_exports
        # already checks the saved TorchScript's outputs against PyTorch on fresh input.
        traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(str(path))


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    with quiet_torch_deprecations(), torch.no_grad():
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def verify_exports(model: torch.nn.Module, out_dir: Path, image_size: int, seed: int = 0) -> dict:
    """Run random input (batch of 3, not the export batch) through torch, TorchScript and ONNX;
    raise ExportMismatch if probabilities differ beyond tolerance. Returns max abs differences."""
    import onnxruntime as ort

    x = torch.randn(3, 3, image_size, image_size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        reference = _softmax(model(x).numpy())
        with quiet_torch_deprecations():
            scripted = torch.jit.load(str(out_dir / FILES["torchscript"]), map_location="cpu")
        ts = _softmax(scripted(x).numpy())
    session = ort.InferenceSession(str(out_dir / FILES["onnx"]), providers=["CPUExecutionProvider"])
    onnx_probs = _softmax(session.run(None, {"input": x.numpy()})[0])
    diffs = {"torchscript": float(np.abs(ts - reference).max()),
             "onnx": float(np.abs(onnx_probs - reference).max())}
    for name, got in (("TorchScript", ts), ("ONNX", onnx_probs)):
        if got.shape != reference.shape or not np.allclose(got, reference, rtol=RTOL, atol=ATOL):
            raise ExportMismatch.because(N_("The %(export)s export does not reproduce the PyTorch model "
                                            "(max difference %(difference_sci)s)."),
                                         export=name, difference_sci=float(np.abs(got - reference).max()))
    return diffs


def _export_composed(model: torch.nn.Module, out: Path, prebuilt, size: int) -> dict:
    """The state_dict (no copy of the frozen backbone needed) and the joined TorchScript and ONNX
    files (compose), checked; returns the check's differences."""
    from .compose import compose_onnx, compose_torchscript, verify_composed

    state = {k: v.detach().to("cpu", memory_format=torch.contiguous_format).contiguous()
             for k, v in model.state_dict().items()}
    torch.save(state, out / FILES["state_dict"])
    head = copy.deepcopy(model.head).to("cpu").float().eval()
    compose_torchscript(prebuilt.torchscript, head, out / FILES["torchscript"])
    compose_onnx(prebuilt.onnx, head, out / FILES["onnx"])
    return verify_composed(head, (out / FILES["onnx"], out / FILES["torchscript"]), prebuilt, size)


@dataclass(frozen=True)
class CardInfo:
    """What the model card says about a model: its classes, network, input size and how it scored."""

    classes: Sequence[str]
    arch_info: Any                  # architectures.ArchInfo
    image_size: int
    resize_size: int
    metrics: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] | None = None


PREPROCESSING_STEPS = (
    "1. Open the file; take the first frame.",
    "2. JPEG only: decode at a reduced scale (libjpeg DCT scaling by 1/2, 1/4 or 1/8), the strongest that "
    "keeps both sides at least decode_side pixels: Pillow Image.draft('RGB', (decode_side, decode_side)) "
    "before the pixels are read.",
    "3. Apply the EXIF orientation tag (PIL.ImageOps.exif_transpose).",
    "4. Convert to RGB.",
    "5. Resize the short side to resize_size (bilinear, antialiased) and cut the centre size x size "
    "square, as one Pillow bilinear resize of that square's box (see preprocess.py).",
    "6. float32: x / 255, then (x - mean) / std per channel; NCHW.",
)


def input_spec(info: CardInfo) -> dict:
    """The card's "input": what the network takes and the exact steps from a file to it (the ones
    /predict follows; preprocess.py beside the model does them in Pillow and numpy)."""
    from .reference import decoded_short_side

    arch_info = info.arch_info
    return {"size": info.image_size, "resize_size": info.resize_size,
            "decode_side": decoded_short_side(info.image_size), "jpeg_draft": True, "exif_transpose": True,
            "mean": list(arch_info.mean), "std": list(arch_info.std), "layout": "NCHW", "dtype": "float32",
            "channels": "RGB", "preprocessing": " ".join(PREPROCESSING_STEPS), "reference": PREPROCESS}


def build_card(info: CardInfo) -> dict:
    arch_info = info.arch_info
    return {
        "format": CARD_FORMAT,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "classes": list(info.classes),
        "architecture": arch_info.name,
        "architecture_label": arch_info.label,
        "input": input_spec(info),
        "outputs": "logits (apply softmax for probabilities)",
        "threshold": None,
        "threshold_rule": THRESHOLD_RULE,
        "metrics": dict(info.metrics or {}),
        "metadata": dict(info.metadata or {}),
        "versions": library_versions(),
        "files": dict(FILES),
    }


def export_model(model: torch.nn.Module, out_dir: str | Path, card_info: CardInfo,
                 verify: bool = True, prebuilt=None) -> dict[str, str]:
    """Write model.pt, model.torchscript.pt, model.onnx, model_card.json and preprocess.py into out_dir.

    The exported graph is the whole classifier (backbone + head) on CPU, float32, eval mode.
    prebuilt (compose.PrebuiltBackbone): exported copies of the model's frozen backbone, joined to
    its head instead of tracing the whole network again. Returns {kind: path}. Raises ExportMismatch
    if an export disagrees with PyTorch.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = card_info.image_size
    if prebuilt is not None:
        card = build_card(card_info)
        card["export_check"] = _export_composed(model, out, prebuilt, size)
    else:
        model = _cpu_eval_copy(model)
        torch.save(model.state_dict(), out / FILES["state_dict"])
        example = torch.zeros(1, 3, size, size)
        export_torchscript(model, example, out / FILES["torchscript"])
        export_onnx(model, example, out / FILES["onnx"])
        card = build_card(card_info)
        if verify:
            card["export_check"] = verify_exports(model, out, size)
    (out / FILES["card"]).write_text(json.dumps(card, indent=2, sort_keys=False))
    write_from_card(card, out / FILES["preprocess"])
    log.info("exported model (%s, %d classes) to %s", card_info.arch_info.name, len(card_info.classes), out)
    return {kind: str(out / name) for kind, name in FILES.items()}
