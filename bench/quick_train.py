"""Benchmark: quick mode (frozen EfficientNet-Lite0 + the better of a linear and an MLP head) on
hymenoptera, CPU.

Usage: python bench/quick_train.py [path]   (default ../shared/data/hymenoptera from the repo root)

Training data: the train/ folder, split by the engine (stratified, 15 % validation for model
selection, seed 0). Evaluation: the val/ folder, passed to the engine as the frozen test split,
so "val accuracy" below is accuracy on hymenoptera's val/ folder, never seen in training.

Quick-train wall time includes everything train() does: split, features of all 398 images (decoded
by a thread pool while ONNX Runtime runs the backbone), both heads, test evaluation, checkpoint and
export (TorchScript + ONNX, joined onto the backbone's cached exports, checked).
- "first run after install": nothing cached (the backbone is exported to ONNX and traced, once per
  network and image size, then features computed) - info;
- "cold": a new dataset on an installed studio: no features stored, backbone exports cached - target
  <= 4 s, and its ratio to the floor (bench/_features.py: decode over all cores + bare ONNX forward of
  the same 398 images, measured in the same run);
- "second": the same dataset again (features read from its store) - target <= 2 s.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import DEFAULT_DATA, image_folder, print_table, row, warm_file_cache  # noqa: E402
from bench._features import measure_floor  # noqa: E402

from app.ml import TrainOptions, stratified_split, train  # noqa: E402
from app.ml.engine import TrainInputs, TrainSetup  # noqa: E402


def floor_seconds(samples, backbone_dir: Path) -> float:
    from app.ml.architectures import get_architecture
    from app.ml.embeddings import FeatureSetup, Preprocess, prepare_pass

    info = get_architecture("efficientnet_lite0")
    how = prepare_pass("efficientnet_lite0", Preprocess(224, info.mean, info.std),
                       FeatureSetup(backbone_dir=backbone_dir, device="cpu"))
    return measure_floor([s.path for s in samples], how).seconds


def _dataset(path: Path):
    train_samples, classes = image_folder(path / "train")
    val_samples, val_classes = image_folder(path / "val", start_id=len(train_samples))
    assert classes == val_classes
    samples = train_samples + val_samples
    split = stratified_split([s.label for s in train_samples], val_fraction=0.15, test_fraction=0.0, seed=0)
    split["test"] = list(range(len(train_samples), len(samples)))
    return samples, classes, split


def _timed_train(inputs, options, out: Path, setup: TrainSetup):
    started = time.perf_counter()
    result = train(inputs, options, out, setup=setup)
    return result, time.perf_counter() - started


def run(path: str | Path | None = None) -> list[dict]:
    path = Path(path) if path else DEFAULT_DATA
    samples, classes, split = _dataset(path.resolve())
    warm_file_cache(samples)
    options = TrainOptions(mode="quick", architecture="efficientnet_lite0")
    inputs = TrainInputs(samples, classes, split=split)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        setup = lambda name: TrainSetup(device="cpu", feature_dir=tmp / name, backbone_dir=tmp / "backbones")  # noqa: E731
        _, install_s = _timed_train(inputs, options, tmp / "run0", setup("dataset0"))
        floor = floor_seconds(samples, tmp / "backbones")
        cold, cold_s = _timed_train(inputs, options, tmp / "run1", setup("dataset1"))
        warm, warm_s = _timed_train(inputs, options, tmp / "run2", setup("dataset1"))
    acc = cold.test_metrics["accuracy"]
    print(f"{len(samples)} images ({len(split['train'])} train, {len(split['val'])} val-for-selection, "
          f"{len(split['test'])} hymenoptera val/ as test); floor {floor:.2f}s, first run after install "
          f"{install_s:.2f}s, cold {cold_s:.2f}s, second {warm_s:.2f}s; cold features {cold.embedding_stats}; "
          f"{cold.extra['head_choice']['reason']}")
    return [
        row("quick train val/ accuracy (efficientnet_lite0)", acc, ">= 0.93", acc >= 0.93),
        row("cold quick train wall time (no features stored), s", cold_s, "<= 4", cold_s <= 4),
        row("cold quick train / floor (ONNX fwd + decode all cores)", cold_s / floor, "info", True),
        row("floor: decode all cores + bare ONNX forward, s", floor, "info", True),
        row("first quick train after install (backbone export incl.), s", install_s, "info", True),
        row("second quick train (features stored), s", warm_s, "<= 2.0", warm_s <= 2.0),
    ]


if __name__ == "__main__":
    rows = run(sys.argv[1] if len(sys.argv) > 1 else None)
    print_table(rows, "bench/quick_train.py")
