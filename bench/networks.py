"""Benchmark: every pretrained network in Quick mode on hymenoptera, so users can choose (README links it).

Usage: python bench/networks.py [path] [--write-hints]   (default ../shared/data/hymenoptera)

For each network whose ImageNet weights are installed here (WEIGHTS_DIR, default instance/weights, as
`make run` uses; EfficientNet-Lite0 is built in):
  - accuracy: Quick mode trained on hymenoptera train/ (engine split, 15 % validation, seed 0), tested
    on its val/ folder (153 photos never seen in training), as bench/quick_train.py does;
  - features/s: images / seconds of Quick mode's feature pass (decode, resize, crop, forward), cold cache;
  - the floor beside it: a bare batched forward pass of the same backbone over the same images, decode
    included, through the faster runtime here (PyTorch or ONNX Runtime), in the same process.
Networks not installed are skipped for accuracy, with the reason; their speed is still measured with
RANDOM weights on the first SPEED_IMAGES photos (speed does not depend on the weight values).
--write-hints stores the figures in app/ml/network_figures.json, which the train form shows.
"""
from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import DEFAULT_DATA, ROOT, print_table, row, warm_file_cache  # noqa: E402
from bench.quick_train import _dataset  # noqa: E402

from app.ml import TrainOptions, train  # noqa: E402
from app.ml import data as mldata  # noqa: E402
from app.ml import networks  # noqa: E402
from app.ml.architectures import build_backbone  # noqa: E402
from app.ml.engine import TrainInputs, TrainSetup  # noqa: E402
from app.ml.progress import Hooks  # noqa: E402
from app.ml.runtime import to_device_images  # noqa: E402

BATCH, SIZE, SPEED_IMAGES = 16, 224, 64


def _batches(samples, info):
    for i in range(0, len(samples), BATCH):
        images = torch.stack([mldata.load_eval_crop(s.path, SIZE) for s in samples[i:i + BATCH]])
        yield to_device_images(images, torch.device("cpu"), info.mean, info.std)


def torch_forward_s(name: str, samples, pretrained: bool = True, repeats: int = 1) -> float:
    """Seconds of the fastest of `repeats` passes (a shared machine's noise only ever adds time)."""
    info = networks.architecture_info(name)
    backbone, _ = build_backbone(name, SIZE, pretrained=pretrained)
    backbone = backbone.to(memory_format=torch.channels_last).eval()
    times = []
    with torch.inference_mode():  # one-off oneDNN set-up is not part of the pass
        backbone(torch.zeros(2, 3, SIZE, SIZE).contiguous(memory_format=torch.channels_last))
        for _ in range(repeats):
            started = time.perf_counter()
            for x in _batches(samples, info):
                backbone(x)
            times.append(time.perf_counter() - started)
    return min(times)


def onnx_forward_s(name: str, samples, folder: Path) -> float:
    import onnxruntime as ort

    from app.ml.export import export_onnx

    info = networks.architecture_info(name)
    backbone, _ = build_backbone(name, SIZE)
    export_onnx(backbone.eval(), torch.zeros(1, 3, SIZE, SIZE), folder / f"{name}.onnx")
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(folder / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
    session.run(None, {"input": torch.zeros(2, 3, SIZE, SIZE).numpy()})
    started = time.perf_counter()
    for x in _batches(samples, info):
        session.run(None, {"input": x.contiguous().numpy()})
    return time.perf_counter() - started


def quick_mode(name: str, samples, classes, split, folder: Path) -> tuple[float, float]:
    """(val/ accuracy, seconds of the feature pass) of a cold Quick-mode run (no features stored; the
    backbone's ONNX export made beforehand, as on a studio that has used this network once)."""
    from app.ml.embeddings import FeatureSetup, Preprocess, prepare_pass

    info = networks.architecture_info(name)
    prepare_pass(name, Preprocess(info.default_image_size, info.mean, info.std),
                 FeatureSetup(backbone_dir=folder / "backbones", device="cpu"))
    phases: dict[str, float] = {}
    started = time.perf_counter()
    hooks = Hooks(progress=lambda e: phases.setdefault(e["phase"], time.perf_counter() - started))
    setup = TrainSetup(device="cpu", feature_dir=folder / f"features-{name}", backbone_dir=folder / "backbones",
                       export=False)
    result = train(TrainInputs(samples, classes, split=split), TrainOptions(mode="quick", architecture=name),
                   folder / name, hooks, setup)
    return result.test_metrics["accuracy"], phases["training"] - phases["embedding"]


def _installed_rows(name: str, data, folder: Path, figures: dict) -> list[dict]:
    samples, classes, split = data
    accuracy, feature_s = quick_mode(name, samples, classes, split, folder)
    floors = {"torch": torch_forward_s(name, samples), "onnx": onnx_forward_s(name, samples, folder)}
    runtime = min(floors, key=floors.get)
    speed, floor = len(samples) / feature_s, len(samples) / floors[runtime]
    figures[name] = {"accuracy": round(accuracy, 4), "images_per_s": round(speed, 1), "weights": "imagenet"}
    print(f"{name}: accuracy {accuracy:.3f}; feature pass {feature_s:.1f}s; bare forward "
          + ", ".join(f"{k} {v:.1f}s" for k, v in floors.items()))
    return [
        row(f"{name}: quick val/ accuracy", accuracy, ">= 0.90", accuracy >= 0.90),
        row(f"{name}: quick feature pass, images/s (decode incl.)", speed, "info", True),
        row(f"{name}:   floor: bare forward ({runtime}), images/s", floor, "info", True),
        row(f"{name}:   feature pass time / bare forward time", floor / speed, "<= 1.5", floor / speed <= 1.5),
    ]


def _skipped_rows(name: str, samples, figures: dict) -> list[dict]:
    subset = samples[:SPEED_IMAGES]
    speed = len(subset) / torch_forward_s(name, subset, pretrained=False, repeats=2)
    figures[name] = {"images_per_s": round(speed, 1), "weights": "random (speed only)"}
    why = "weights not installed (no internet here; Admin -> Networks or `flask weights fetch`)"
    return [{"figure": f"{name}: accuracy skipped", "value": why[:60], "target": "", "passed": None},
            row(f"{name}: bare forward, images/s (torch, RANDOM weights)", speed, "info", True)]


def write_hints(figures: dict, samples: int) -> None:
    from bench.run_all import machine

    networks.FIGURES_FILE.write_text(json.dumps({
        "machine": machine(), "date": datetime.date.today().isoformat(),
        "dataset": f"hymenoptera: {samples} photos (train/ + val/), accuracy on val/",
        "networks": figures}, indent=2) + "\n")
    networks.measured_figures.cache_clear()


def run(path: str | Path | None = None, hints: bool = False) -> list[dict]:
    if networks.weights_dir() is None:  # what `make run` uses
        networks.set_weights_dir(ROOT / "instance" / "weights")
    data = _dataset(Path(path or DEFAULT_DATA).resolve())
    warm_file_cache(data[0])
    rows, figures = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for info in networks.list_architectures():
            if not info.pretrained:
                continue
            if info.installed:
                rows += _installed_rows(info.name, data, Path(tmp), figures)
            else:
                rows += _skipped_rows(info.name, data[0], figures)
    if hints:
        write_hints(figures, len(data[0]))
    return rows


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--write-hints"]
    print_table(run(args[0] if args else None, hints="--write-hints" in sys.argv), "bench/networks.py")
    print(f"WEIGHTS_DIR: {networks.weights_dir()} (threads: {os.environ.get('OMP_NUM_THREADS', 'default')})")
