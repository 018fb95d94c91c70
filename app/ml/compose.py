"""Exporting a quick-mode classifier without tracing its backbone again: its frozen backbone is the
pretrained one, already exported (ONNX) and traced (TorchScript) once per network and image size in
the backbone cache, so the classifier's files are that backbone plus its small head, joined.

Tracing and exporting the whole network costs seconds per run; joining costs a fraction of one. The
cached backbone files were checked against torch when they were made, so the joined files are
checked where they are new: the head, on features from the verified backbone (verify_composed).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ExportMismatch
from .words import N_


@dataclass(frozen=True)
class PrebuiltBackbone:
    """Exported copies of a frozen backbone: ONNX ('input' -> 'features') and TorchScript."""

    onnx: Path
    torchscript: Path


class _Classifier(nn.Module):
    """backbone then head, for scripting around an already compiled backbone."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def compose_torchscript(backbone: Path, head: nn.Module, path: Path) -> None:
    """The cached TorchScript backbone followed by the scripted head, saved to path."""
    from .export import quiet_torch_deprecations

    with quiet_torch_deprecations():
        compiled = torch.jit.load(str(backbone), map_location="cpu")
        scripted = torch.jit.script(_Classifier(compiled, torch.jit.script(head)))
        scripted.save(str(path))


def compose_onnx(backbone: Path, head: nn.Module, path: Path) -> None:
    """The cached ONNX backbone graph with the head's layers appended: input 'input', output 'logits'."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(backbone))
    graph = model.graph
    current, classes = graph.output[0].name, None
    for i, layer in enumerate(head):
        prefix = f"classifier_head.{i}"
        if isinstance(layer, nn.Linear):
            weight = numpy_helper.from_array(layer.weight.detach().cpu().float().numpy(), f"{prefix}.weight")
            bias = numpy_helper.from_array(layer.bias.detach().cpu().float().numpy(), f"{prefix}.bias")
            graph.initializer.extend([weight, bias])
            graph.node.append(helper.make_node("Gemm", [current, weight.name, bias.name], [prefix], transB=1))
            classes = layer.out_features
        elif isinstance(layer, nn.ReLU):
            graph.node.append(helper.make_node("Relu", [current], [prefix]))
        elif isinstance(layer, nn.Dropout):  # identity at inference
            continue
        else:
            raise ValueError(f"cannot join a {type(layer).__name__} layer onto an ONNX backbone")
        current = prefix
    graph.node.append(helper.make_node("Identity", [current], ["logits"]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes]))
    onnx.save(model, str(path))


def verify_composed(head: nn.Module, files: tuple[Path, Path], prebuilt: PrebuiltBackbone, image_size: int) -> dict:
    """Check joined exports (files: ONNX, TorchScript) where they are new: the ONNX file end to end
    against the torch head on the verified backbone's features, and the TorchScript file's head on
    the same features (its backbone is the cached, verified trace, loaded as is). Raises ExportMismatch."""
    from .export import ATOL, RTOL, _softmax, quiet_torch_deprecations

    onnx_path, ts_path = files
    x = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0)).numpy()
    features = _session(prebuilt.onnx).run(None, {"input": x})[0]
    with torch.no_grad():
        reference = _softmax(head(torch.from_numpy(features)).numpy())
        with quiet_torch_deprecations():
            scripted = torch.jit.load(str(ts_path), map_location="cpu")
        ts = _softmax(scripted.head(torch.from_numpy(features)).numpy())
    joined = _softmax(_session(onnx_path).run(None, {"input": x})[0])
    diffs = {"torchscript": float(np.abs(ts - reference).max()), "onnx": float(np.abs(joined - reference).max())}
    for name, got in (("TorchScript", ts), ("ONNX", joined)):
        if got.shape != reference.shape or not np.allclose(got, reference, rtol=RTOL, atol=ATOL):
            raise ExportMismatch.because(N_("The %(export)s export does not reproduce the PyTorch model "
                                            "(max difference %(difference_sci)s)."),
                                         export=name, difference_sci=float(np.abs(got - reference).max()))
    return diffs


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
