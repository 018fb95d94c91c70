"""Fine-tune throughput on a GPU through the real engine (app.ml.engine.train), images/s.

Usage (on a machine with CUDA): python bench/gpu_finetune.py [hymenoptera/train folder]

For each network it fine-tunes all layers on the ImageFolder photos for a few epochs and reports
the training-phase images/s the engine itself measured (augmentation, transfer, forward,
backward, optimiser step; decoding happens once per run, before epoch 1). EfficientNet-Lite0 uses
its real ImageNet weights. The torchvision networks' ImageNet weights cannot be downloaded on an offline
GPU machine, so for each one not installed in WEIGHTS_DIR this bench alone writes a randomly initialised
checkpoint into a temporary weights folder (flagged "random weights" in the table): throughput does not
depend on the weight values, accuracy does (not reported).
The original prototype's figure to beat by 10x: 286 images/s for ResNet-18 fine-tuning.
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
except ImportError:
    # A bare GPU machine has torch but not the web stack: import app.ml without app/__init__.py
    # (app.ml imports nothing from Flask by design).
    import types

    _pkg = types.ModuleType("app")
    _pkg.__path__ = [str(ROOT / "app")]
    sys.modules["app"] = _pkg

import torch  # noqa: E402

from bench._common import DEFAULT_DATA, image_folder, print_table, row  # noqa: E402

PROTOTYPE_IMG_S = 286.0


NETWORKS = tuple((name, 128) for name in os.environ.get(
    "GPU_FINETUNE_NETWORKS",
    "resnet18,efficientnet_lite0,mobilenet_v3_large,efficientnet_b0,resnet50,convnext_tiny").split(","))


def _weights_or_random(names) -> dict[str, bool]:
    """Point app.ml at a temporary weights folder holding the installed files, and random weights for
    the rest; returns {name: True when the weights are random}."""
    import shutil

    from app.ml.architectures import torchvision_network
    from app.ml.networks import CATALOGUE, installed_file, set_weights_dir, weights_path

    installed = {n: installed_file(n) for n in names if CATALOGUE[n].weights is not None}
    set_weights_dir(tempfile.mkdtemp(prefix="weights-"))
    for name, path in installed.items():
        if path is not None:
            shutil.copy(path, weights_path(name))
        else:
            torch.save(torchvision_network(name).state_dict(), weights_path(name))
    return {n: installed.get(n, "built in") is None for n in names}


def finetune_img_s(arch: str, samples, classes, epochs: int, batch: int) -> tuple[float, float]:
    from app.ml import TrainOptions, train
    from app.ml.engine import TrainInputs, TrainSetup

    options = TrainOptions.from_dict({"architecture": arch, "mode": "fine_tune", "epochs": epochs,
                                      "batch_size": batch, "val_fraction": 0.1, "test_fraction": 0.0,
                                      "early_stopping_patience": 100})
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = train(TrainInputs(samples, classes), options, out, setup=TrainSetup(device="cuda", export=False))
    # The last epoch is steady state (the first pays CUDA start-up and cuDNN autotuning);
    # its seconds include the validation pass, so this figure is a lower bound.
    last = result.history[-1]
    return len(result.split["train"]) / last["seconds"], time.perf_counter() - start


def run(path: str | None = None) -> list[dict]:
    if not torch.cuda.is_available():
        return [{"figure": "GPU fine-tune (skipped: no CUDA device)", "value": 0.0, "target": "needs a GPU",
                 "passed": None}]
    root = Path(path or os.environ.get("BENCH_DATA") or DEFAULT_DATA / "train")
    samples, classes = image_folder(root)
    samples = samples * 8  # 245 photos -> ~2,000 per epoch, so steady state dominates
    samples = [type(s)(i, s.path, s.label) for i, s in enumerate(samples)]
    random = _weights_or_random([name for name, _ in NETWORKS])
    rows = []
    for arch, batch in NETWORKS:
        img_s, wall = finetune_img_s(arch, samples, classes, epochs=4, batch=batch)
        flag = " (random weights)" if random[arch] else ""
        if arch == "resnet18":
            target = f">= {10 * PROTOTYPE_IMG_S:.0f} img/s (10x prototype)"
            rows.append(row(f"{arch}{flag} fine-tune img/s on {torch.cuda.get_device_name(0)}", img_s, target,
                            img_s >= 10 * PROTOTYPE_IMG_S))
        else:
            rows.append({"figure": f"{arch}{flag} fine-tune img/s on {torch.cuda.get_device_name(0)}",
                         "value": img_s, "target": "info", "passed": None})
        rows.append({"figure": f"{arch} wall time, 4 epochs of {len(samples)} images (s)", "value": wall,
                     "target": "info", "passed": None})
    return rows


if __name__ == "__main__":
    print_table(run(sys.argv[1] if len(sys.argv) > 1 else None), "GPU fine-tune throughput")
