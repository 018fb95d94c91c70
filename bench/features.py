"""Benchmark: frozen-backbone feature passes (quick mode, health check, suggestions) against the floor.

Usage: python bench/features.py [path]   (default ../shared/data/hymenoptera from the repo root)

On every photo of the set (train/ and val/, 398 hymenoptera JPEGs), EfficientNet-Lite0 at 224 px:
1. the feature pass (app.ml.embeddings.compute_features: decode pool pipelined with ONNX Runtime),
   nothing cached, vs the floor measured in the same run (bench/_features.py: decode + crop spread over
   all cores, plus the bare ONNX Runtime forward of as many images). Throughput ratio = floor / pass,
   target >= 0.8. Three alternating repeats; the median ratio is reported.
2. the health check's first pass (features into an empty store + near-duplicates + out-of-fold label
   check) and the label suggestions' first pass (a quick-mode model's head on features computed into
   an empty store), each as floor / time, target >= 0.8.
Info rows: torch on CPU (channels_last) vs ONNX Runtime forward throughput on the same batches.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import DEFAULT_DATA, image_folder, print_table, row  # noqa: E402
from bench._features import measure_floor, warm  # noqa: E402

ARCH, SIZE, REPEATS = "efficientnet_lite0", 224, 3


def _prep():
    from app.ml.architectures import get_architecture
    from app.ml.embeddings import Preprocess

    info = get_architecture(ARCH)
    return Preprocess(SIZE, info.mean, info.std)


def _pass_seconds(paths, how) -> float:
    from app.ml.embeddings import ImageFiles, compute_features

    started = time.perf_counter()
    compute_features(ImageFiles(paths), how)
    return time.perf_counter() - started


def _torch_vs_onnx(how, tmp: Path) -> tuple[float, float]:
    """images/s of torch (CPU, channels_last) and ONNX Runtime on the same 64 random inputs."""
    from app.ml.embeddings import FeatureSetup, prepare_pass

    plain = prepare_pass(ARCH, how.prep, FeatureSetup(device="cpu"), how.backbone.module)
    x = np.random.default_rng(0).normal(size=(32, 3, SIZE, SIZE)).astype(np.float32)
    rates = []
    for backbone in (plain.backbone, how.backbone):
        backbone(x[:2])
        started = time.perf_counter()
        backbone(x)
        backbone(x)
        rates.append(64 / (time.perf_counter() - started))
    return rates[0], rates[1]


def _health_seconds(paths, labels, tmp: Path) -> float:
    from app.ml import health
    from app.ml.embeddings import FeatureSetup, ImageFiles

    started = time.perf_counter()
    setup = FeatureSetup(dataset_dir=tmp / "health-store", backbone_dir=tmp / "backbones", device="cpu")
    files = ImageFiles(paths, ids=list(range(len(paths))))
    features = health.embed_images(files, setup, ARCH, SIZE)
    health.near_duplicate_groups(features.vectors)
    health.out_of_fold_probs(features.vectors, labels, 2)
    return time.perf_counter() - started


def _suggest_seconds(samples, classes, paths, tmp: Path) -> float:
    from app.ml import TrainOptions, train
    from app.ml.embeddings import FeatureSetup, ImageFiles
    from app.ml.engine import TrainInputs, TrainSetup
    from app.ml.suggest import score_files

    model = tmp / "model"
    train(TrainInputs(samples[::2], classes), TrainOptions(), model,
          setup=TrainSetup(device="cpu", backbone_dir=tmp / "backbones"))
    setup = FeatureSetup(dataset_dir=tmp / "suggest-store", backbone_dir=tmp / "backbones", device="cpu")
    started = time.perf_counter()
    scores = score_files(model, ImageFiles(paths, ids=list(range(len(paths)))), features=setup)
    assert scores.method == "embeddings" and len(scores.ok) == len(paths)
    return time.perf_counter() - started


def run(path: str | Path | None = None) -> list[dict]:
    from app.ml.embeddings import FeatureSetup, prepare_pass

    root = Path(path) if path else DEFAULT_DATA
    train_samples, classes = image_folder(root.resolve() / "train")
    val_samples, _ = image_folder(root.resolve() / "val", start_id=len(train_samples))
    samples = train_samples + val_samples
    paths, labels = [s.path for s in samples], [s.label for s in samples]
    warm(paths)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        how = prepare_pass(ARCH, _prep(), FeatureSetup(backbone_dir=tmp / "backbones", device="cpu"))
        floors, passes = [], []
        for _ in range(REPEATS):
            floors.append(measure_floor(paths, how))
            passes.append(_pass_seconds(paths, how))
        ratios = [f.seconds / p for f, p in zip(floors, passes)]
        floor = floors[len(floors) // 2].seconds
        health_s = _health_seconds(paths, labels, tmp)
        suggest_s = _suggest_seconds(samples, classes, paths, tmp)
        health_floor = measure_floor(paths, how).seconds
        torch_rate, onnx_rate = _torch_vs_onnx(how, tmp)
    ratio = statistics.median(ratios)
    print(f"{len(paths)} images; floor {[round(f.seconds, 2) for f in floors]} s "
          f"(decode {[round(f.decode_s, 2) for f in floors]}), pass {[round(p, 2) for p in passes]} s; "
          f"health {health_s:.2f} s, suggestions {suggest_s:.2f} s (floor then {health_floor:.2f} s); "
          f"torch threads {torch.get_num_threads()}")
    return [
        row("feature pass throughput / floor (ONNX fwd + decode all cores)", ratio, ">= 0.8", ratio >= 0.8),
        row("feature pass, images/s", len(paths) / statistics.median(passes), "info", True),
        row("floor, images/s", len(paths) / floor, "info", True),
        row("health check first pass: floor / time", health_floor / health_s, ">= 0.8",
            health_floor / health_s >= 0.8),
        row("suggestions first pass: floor / time", health_floor / suggest_s, ">= 0.8",
            health_floor / suggest_s >= 0.8),
        row("backbone forward, torch CPU channels_last, images/s", torch_rate, "info", True),
        row("backbone forward, ONNX Runtime, images/s", onnx_rate, "info", True),
    ]


if __name__ == "__main__":
    rows = run(sys.argv[1] if len(sys.argv) > 1 else None)
    print_table(rows, "bench/features.py")
