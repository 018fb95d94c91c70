"""The frozen pretrained backbone behind every feature pass (quick mode, health check, suggestions).

On CPU it runs through ONNX Runtime (several times faster than torch here): the backbone is exported
once per (network, image size, weights) into a cache folder, checked against torch on first export,
and reused by every later job. A cached file that fails its checksum or does not load is rebuilt; an
export that disagrees with torch is refused (remembered in its sidecar) and torch is used instead.
On CUDA torch runs it, in bf16 autocast and channels_last.

Input of every runner: normalised float32 [N,3,size,size] numpy (see pipeline.DecodeSpec); output:
float32 features [N, D] numpy.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .architectures import build_backbone
from .compose import PrebuiltBackbone
from .export import ONNX_OPSET, quiet_torch_deprecations
from .pipeline import resolve_threads
from .runtime import amp_dtype, padded_rows, padded_size, resolve_device

log = logging.getLogger(__name__)
FEATURE_BATCH = 32  # images per forward pass of a feature pass (embeddings.BATCH)

FORMAT = 1              # bump when the export itself changes
VERIFY_TOLERANCE = 1e-4  # max |onnx - torch|, relative to the largest feature (at least 1)
_SESSIONS: OrderedDict = OrderedDict()  # (path, sha256, threads) -> InferenceSession, this process
_SESSIONS_LOCK = threading.Lock()


@dataclass(frozen=True)
class RuntimeSpec:
    """Which backbone, where it runs, where exported copies are kept (None: no ONNX, torch only) and
    how many threads ONNX Runtime uses (0: all cores of this process)."""

    architecture: str
    image_size: int
    device: str | torch.device | None = None
    cache_dir: str | Path | None = None
    threads: int = 0


@dataclass
class Backbone:
    """A ready-to-run backbone: `run(batch) -> features`, plus the torch module it came from."""

    kind: str                       # 'onnx' or 'torch'
    module: torch.nn.Module
    feature_dim: int
    run: Callable[[np.ndarray], np.ndarray]
    device: torch.device
    onnx_path: Path | None = None
    fingerprint: str = ""
    precision: str = "fp32"         # 'bf16'/'fp16' under CUDA autocast: such features are kept apart
    image_size: int = 0
    exported_now: bool = False      # True when this call had to (re)build the ONNX file

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run(batch)


def weights_fingerprint(module: torch.nn.Module) -> str:
    """Short hash of a module's parameters and buffers: names the caches built from them."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def open_backbone(spec: RuntimeSpec, module: torch.nn.Module | None = None) -> Backbone:
    """The backbone of spec.architecture ready for feature passes: ONNX Runtime on CPU when a cache
    folder is given and the export agrees with torch, else torch. `module`: an already built
    pretrained backbone (saves building it again)."""
    if module is None:
        module, dim = build_backbone(spec.architecture, spec.image_size, pretrained=True)
    else:
        dim = _feature_dim(module, spec.image_size)
    device = resolve_device(spec.device)
    module = module.to(device, memory_format=torch.channels_last).eval()
    fingerprint = weights_fingerprint(module)
    if device.type == "cpu" and spec.cache_dir is not None:
        try:
            backbone = _onnx_backbone(spec, module, dim, fingerprint)
        except OSError as exc:  # a read-only or full cache folder: slower, but the job still runs
            log.warning("cannot use the ONNX backbone cache in %s (%s); using torch", spec.cache_dir, exc)
            backbone = None
        if backbone is not None:
            return backbone
    dtype = amp_dtype(device)
    precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")
    return Backbone("torch", module, dim, _torch_runner(module, device), device, fingerprint=fingerprint,
                    precision=precision, image_size=spec.image_size)


def _feature_dim(module: torch.nn.Module, image_size: int) -> int:
    dim = getattr(module, "feature_dim", None)
    if dim:
        return int(dim)
    with torch.inference_mode():
        device = next(module.parameters()).device
        return int(module.eval()(torch.zeros(1, 3, image_size, image_size, device=device)).shape[1])


def _torch_runner(module: torch.nn.Module, device: torch.device, pad: bool | None = None):
    """pad (default: on a GPU): run a pass's batches at a few padded sizes (runtime.batch_shapes), so the
    last, short batch of each pass does not make cuDNN prepare plans for a new shape (seconds)."""
    dtype = amp_dtype(device)
    pad = device.type == "cuda" if pad is None else pad

    def run(batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        x = torch.from_numpy(padded_rows(batch, padded_size(n, max(n, FEATURE_BATCH))) if pad else batch)
        if device.type == "cuda":
            x = x.pin_memory()
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            return module(x)[:n].float().cpu().numpy()

    return run


def prebuilt_exports(backbone: Backbone) -> PrebuiltBackbone | None:
    """The cached ONNX file of an ONNX-run backbone plus its TorchScript trace (traced and checked
    now, once per network/size/weights, if missing or damaged), so a classifier on this frozen
    backbone can be exported by joining files (compose). None for torch-run backbones or when the
    trace disagrees with torch."""
    if backbone.kind != "onnx" or backbone.onnx_path is None:
        return None
    path = backbone.onnx_path.with_suffix(".torchscript.pt")
    sidecar = backbone.onnx_path.with_suffix(".torchscript.json")
    try:
        if not _intact(path, sidecar):
            with _file_lock(backbone.onnx_path.with_suffix(".lock")):
                if not _intact(path, sidecar) and _read_sidecar(sidecar).get("status") != "refused":
                    _trace(backbone.module, backbone.image_size, (path, sidecar))
        return PrebuiltBackbone(backbone.onnx_path, path) if _intact(path, sidecar) else None
    except OSError as exc:  # the model is then exported the slow way
        log.warning("cannot keep a TorchScript trace in %s (%s)", path.parent, exc)
        return None


def _intact(path: Path, sidecar: Path) -> bool:
    meta = _read_sidecar(sidecar)
    return meta.get("status") == "ok" and path.exists() and meta.get("sha256") == file_sha256(path)


def _trace(module: torch.nn.Module, size: int, files: tuple[Path, Path]) -> None:
    path, sidecar = files
    cpu = _cpu_copy(module)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
    os.close(fd)
    try:
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
        with quiet_torch_deprecations(), torch.no_grad():
            traced = torch.jit.trace(cpu, torch.zeros(1, 3, size, size))
            reference = cpu(x)
            difference = float((traced(x) - reference).abs().max()) / max(1.0, float(reference.abs().max()))
            traced.save(tmp)
        sha = file_sha256(Path(tmp))
        ok = difference <= VERIFY_TOLERANCE
        if ok:
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _write_json(sidecar, {"status": "ok" if ok else "refused", "sha256": sha, "torch": torch.__version__})
    log.log(logging.INFO if ok else logging.WARNING, "traced %s for exports of models built on it: %s "
            "(max relative difference %.1e)", path.name, "kept" if ok else "refused", difference)


# --- the ONNX file cache ---------------------------------------------------------------------------

def cached_paths(spec: RuntimeSpec, fingerprint: str) -> tuple[Path, Path]:
    """(model file, sidecar) of one (network, image size, weights) in the cache folder."""
    stem = f"{spec.architecture}-{spec.image_size}-{fingerprint}-v{FORMAT}"
    root = Path(spec.cache_dir)
    return root / f"{stem}.onnx", root / f"{stem}.json"


def _onnx_backbone(spec: RuntimeSpec, module: torch.nn.Module, dim: int, fingerprint: str) -> Backbone | None:
    path, sidecar = cached_paths(spec, fingerprint)
    threads = resolve_threads(spec.threads)
    exported = False
    session = _load_cached(path, sidecar, threads)
    if session is None:
        with _file_lock(path.with_suffix(".lock")):
            session = _load_cached(path, sidecar, threads)  # another job may have built it meanwhile
            if session is None:
                if _refused(sidecar):
                    log.warning("ONNX export of %s refused earlier (it disagreed with torch); using torch",
                                path.name)
                    return None
                session, exported = _build(module, spec, (path, sidecar), threads), True
    if session is None:
        return None
    name = session.get_inputs()[0].name
    run = lambda batch: session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})[0]  # noqa: E731
    return Backbone("onnx", module, dim, run, torch.device("cpu"), path, fingerprint, exported_now=exported,
                    image_size=spec.image_size)


def _read_sidecar(sidecar: Path) -> dict:
    try:
        return json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return {}


def _refused(sidecar: Path) -> bool:
    import onnxruntime

    meta = _read_sidecar(sidecar)
    return meta.get("status") == "refused" and meta.get("onnxruntime") == onnxruntime.__version__


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _load_cached(path: Path, sidecar: Path, threads: int):
    """The cached, verified export as a session; None when missing, corrupt or not (yet) verified."""
    meta = _read_sidecar(sidecar)
    if meta.get("status") != "ok" or not path.exists():
        return None
    try:
        sha = file_sha256(path)
        if sha != meta.get("sha256"):
            log.warning("cached ONNX backbone %s fails its checksum; rebuilding it", path.name)
            return None
        return _session(path, sha, threads)
    except Exception as exc:  # onnxruntime raises its own error types for unreadable graphs
        log.warning("cached ONNX backbone %s does not load (%s); rebuilding it", path.name, exc)
        return None


def _new_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # idle ORT threads must not busy-wait: the decoding threads need those cores between batches
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _session(path: Path, sha: str, threads: int):
    """One session per (file, content, threads) in this process, kept for the next pass."""
    key = (str(path), sha, threads)
    with _SESSIONS_LOCK:
        if key in _SESSIONS:
            _SESSIONS.move_to_end(key)
            return _SESSIONS[key]
    session = _new_session(path, threads)
    with _SESSIONS_LOCK:
        _SESSIONS[key] = session
        while len(_SESSIONS) > 2:
            _SESSIONS.popitem(last=False)
    return session


def _build(module: torch.nn.Module, spec: RuntimeSpec, files: tuple[Path, Path], threads: int):
    """Export, check against torch, then publish (file, then sidecar: both written then renamed)."""
    import onnxruntime

    path, sidecar = files
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".onnx")
    os.close(fd)
    try:
        cpu = _cpu_copy(module)
        example = torch.zeros(1, 3, spec.image_size, spec.image_size)
        with quiet_torch_deprecations(), torch.no_grad():
            torch.onnx.export(cpu, (example,), tmp, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["input"], output_names=["features"],
                              dynamic_axes={"input": {0: "batch"}, "features": {0: "batch"}})
        sha = file_sha256(Path(tmp))
        difference = _difference(cpu, _new_session(Path(tmp), 1), spec.image_size)
        ok = difference <= VERIFY_TOLERANCE
        meta = {"status": "ok" if ok else "refused", "sha256": sha, "max_difference": difference,
                "onnxruntime": onnxruntime.__version__, "torch": torch.__version__}
        if ok:
            os.replace(tmp, path)
        _write_json(sidecar, meta)
    finally:
        Path(tmp).unlink(missing_ok=True)
    if not ok:
        log.warning("ONNX export of %s disagrees with torch (max relative difference %.1e); using torch",
                    path.name, difference)
        return None
    log.info("exported %s for feature passes (max relative difference to torch %.1e)", path.name, difference)
    return _session(path, sha, threads)


def _cpu_copy(module: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(module).to("cpu", memory_format=torch.contiguous_format).float().eval()


def _difference(module: torch.nn.Module, session, image_size: int) -> float:
    """Max |onnx - torch| over a few seeded random images, relative to the largest feature."""
    x = torch.randn(3, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = module(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    if got.shape != reference.shape:
        return float("inf")
    return float(np.abs(got - reference).max() / max(1.0, float(np.abs(reference).max())))


def _write_json(path: Path, payload: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh)
    os.replace(tmp, path)


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock between processes (and machines, where the shared file system supports
    flock), so that two jobs do not export the same backbone at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: exporting twice is wasteful but harmless
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
