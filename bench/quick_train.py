"""Benchmark: quick mode (frozen EfficientNet-Lite0 + linear head) on hymenoptera, 2-core CPU.

Usage: python bench/quick_train.py [path]   (default ../shared/data/hymenoptera from the repo root)

Training data: the train/ folder, split by the engine (stratified, 15 % validation for model
selection, seed 0). Evaluation: the val/ folder, passed to the engine as the frozen test split,
so "val accuracy" below is accuracy on hymenoptera's val/ folder, never seen in training.

The baseline is a bare batched forward pass of the same backbone over the same 398 images,
decode + resize + centre crop INCLUDED (the same work quick mode must do per image), in the same
process, batches of 16, channels_last, torch.inference_mode. Quick-train wall time includes
everything train() does: split, embeddings, head training, test evaluation, checkpoint and
export (TorchScript + ONNX + onnxruntime verification).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import DEFAULT_DATA, image_folder, print_table, row, warm_file_cache  # noqa: E402

from app.ml import TrainOptions, stratified_split, train  # noqa: E402
from app.ml.engine import TrainInputs, TrainSetup  # noqa: E402
from app.ml.progress import Hooks  # noqa: E402
from app.ml import data as mldata
from app.ml.architectures import build_backbone, get_architecture
from app.ml.runtime import to_device_images


def bare_forward_seconds(samples, image_size: int = 224, batch: int = 16) -> float:
    info = get_architecture("efficientnet_lite0")
    backbone, _ = build_backbone("efficientnet_lite0", image_size)
    backbone = backbone.to(memory_format=torch.channels_last).eval()
    with torch.inference_mode():  # one-off oneDNN set-up is not part of the pass
        backbone(torch.zeros(2, 3, image_size, image_size).contiguous(memory_format=torch.channels_last))
    started = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(samples), batch):
            images = torch.stack([mldata.load_eval_crop(s.path, image_size) for s in samples[i:i + batch]])
            backbone(to_device_images(images, torch.device("cpu"), info.mean, info.std))
    return time.perf_counter() - started


def _dataset(path: Path):
    train_samples, classes = image_folder(path / "train")
    val_samples, val_classes = image_folder(path / "val", start_id=len(train_samples))
    assert classes == val_classes
    samples = train_samples + val_samples
    split = stratified_split([s.label for s in train_samples], val_fraction=0.15, test_fraction=0.0, seed=0)
    split["test"] = list(range(len(train_samples), len(samples)))
    return samples, classes, split


def run(path: str | Path | None = None) -> list[dict]:
    path = Path(path) if path else DEFAULT_DATA
    samples, classes, split = _dataset(path.resolve())
    warm_file_cache(samples)
    options = TrainOptions(mode="quick", architecture="efficientnet_lite0")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        baseline = bare_forward_seconds(samples)
        phases: dict[str, float] = {}
        started = time.perf_counter()
        inputs, setup = TrainInputs(samples, classes, split=split), TrainSetup(embedding_cache_dir=tmp / "emb")
        cold = train(inputs, options, tmp / "run1",
                     Hooks(progress=lambda e: phases.setdefault(e["phase"], time.perf_counter() - started)), setup)
        cold_s = time.perf_counter() - started
        export_s = cold_s - phases["exporting"]
        started = time.perf_counter()
        warm = train(inputs, options, tmp / "run2", setup=setup)
        warm_s = time.perf_counter() - started
    acc = cold.test_metrics["accuracy"]
    print(f"{len(samples)} images ({len(split['train'])} train, {len(split['val'])} val-for-selection, "
          f"{len(split['test'])} hymenoptera val/ as test); baseline {baseline:.2f}s, cold {cold_s:.2f}s "
          f"(export {export_s:.2f}s), warm {warm_s:.2f}s; warm embeddings {warm.embedding_stats}; "
          f"best epoch {cold.best_epoch}/{len(cold.history)}")
    return [
        row("quick train val/ accuracy (efficientnet_lite0)", acc, ">= 0.93", acc >= 0.93),
        row("cold quick train time / bare forward (decode incl.)", cold_s / baseline, "<= 1.5",
            cold_s / baseline <= 1.5),
        row("cold quick train wall time, s", cold_s, "info", True),
        row("bare forward pass wall time, s", baseline, "info", True),
        row("second quick train (embeddings cached), s", warm_s, "<= 2.0", warm_s <= 2.0),
    ]


if __name__ == "__main__":
    rows = run(sys.argv[1] if len(sys.argv) > 1 else None)
    print_table(rows, "bench/quick_train.py")
