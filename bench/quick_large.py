"""Benchmark: quick mode on 20,000 generated images (no features stored yet), against the floor.

Usage: python bench/quick_large.py [count]    (BENCH_LARGE_IMAGES, default 20000; 0 skips it)

train() through the engine as a worker runs it (features into the dataset's store, both heads,
export joined onto the cached backbone files), on `count` generated 320x240 JPEGs in 10 classes
(bench/_features.py, made once under instance/bench-data). The floor - decoding over all cores plus
the bare ONNX Runtime forward - is measured in the same run on the first 2,000 images and scaled to
`count` (decoding and the forward pass both cost the same per image), to keep the bench short.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import print_table, row  # noqa: E402
from bench._features import generated_images, measure_floor, warm  # noqa: E402

FLOOR_SAMPLE = 2000


def run(count: int | None = None) -> list[dict]:
    from app.ml import Sample, TrainOptions, train
    from app.ml.architectures import get_architecture
    from app.ml.embeddings import FeatureSetup, Preprocess, prepare_pass
    from app.ml.engine import TrainInputs, TrainSetup

    count = int(os.environ.get("BENCH_LARGE_IMAGES", "20000")) if count is None else count
    if count <= 0:
        return [row("quick train on many images: skipped (BENCH_LARGE_IMAGES=0)", 0.0, "info", True)]
    images = generated_images(count)
    warm(p for p, _ in images)
    samples = [Sample(i, p, label) for i, (p, label) in enumerate(images)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        info = get_architecture("efficientnet_lite0")
        how = prepare_pass("efficientnet_lite0", Preprocess(224, info.mean, info.std),
                           FeatureSetup(backbone_dir=tmp / "backbones", device="cpu"))
        floor = measure_floor([p for p, _ in images], how, sample=min(FLOOR_SAMPLE, count))
        setup = TrainSetup(device="cpu", feature_dir=tmp / "features", backbone_dir=tmp / "backbones")
        started = time.perf_counter()
        result = train(TrainInputs(samples, [str(k) for k in range(10)]), TrainOptions(), tmp / "run", setup=setup)
        seconds = time.perf_counter() - started
    stats = result.embedding_stats
    print(f"{count} images; floor {floor.seconds:.1f}s (decode {floor.decode_s:.1f}s + forward {floor.forward_s:.1f}s,"
          f" from {min(FLOOR_SAMPLE, count)} images); quick train {seconds:.1f}s of which features "
          f"{stats['seconds']:.1f}s; test accuracy {result.test_metrics['accuracy']:.3f}; "
          f"{result.extra['head_choice']['reason']}")
    return [
        row(f"quick train, {count} new images, s", seconds, "info", True),
        row(f"quick train, {count} new images / floor", seconds / floor.seconds, "info", True),
        row(f"  of which features, images/s", count / stats["seconds"], "info", True),
    ]


if __name__ == "__main__":
    rows = run(int(sys.argv[1]) if len(sys.argv) > 1 else None)
    print_table(rows, "bench/quick_large.py")
