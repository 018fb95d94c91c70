"""Benchmark: one fine-tune epoch of EfficientNet-Lite0 (224 px, batch 32) vs bare training steps.

Usage: python bench/finetune_epoch.py [path]   (default ../shared/data/hymenoptera from the repo root)

Data: hymenoptera train/ folder, engine split (15 % validation, no test). The fine-tune figure is
the time from the start of the training phase to the last optimiser step of epoch 1, as seen by
the progress callback: it includes batch assembly (augmentation of cached decoded images, in a
prefetch thread), host-to-device transfer, forward, backward, AdamW step and the LR schedule, but
not image decoding (done once per run, before epoch 1) nor validation.
The baseline runs forward + backward + AdamW step on the same number of batches of the same
shape, already in memory as normalised tensors, same model set-up (channels_last, frozen BN
statistics as in fine-tune mode).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import DEFAULT_DATA, image_folder, print_table, row, warm_file_cache  # noqa: E402

from app.ml import TrainOptions, build_model, stratified_split, train  # noqa: E402
from app.ml import data as mldata  # noqa: E402
from app.ml.engine import TrainInputs, TrainSetup  # noqa: E402
from app.ml.progress import Hooks  # noqa: E402
from app.ml.runtime import to_device_images  # noqa: E402

BATCH, SIZE = 32, 224


def bare_steps_seconds(samples, batches: list[list[int]], mean, std) -> float:
    model = build_model("efficientnet_lite0", 2, image_size=SIZE, dropout=0.2)
    model = model.to(memory_format=torch.channels_last)
    model.train()
    for m in model.backbone.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    data = [(to_device_images(torch.stack([mldata.load_eval_crop(samples[i].path, SIZE) for i in b]),
                              torch.device("cpu"), mean, std),
             torch.tensor([samples[i].label for i in b])) for b in batches]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    model(data[0][0][:2]).sum().backward()  # one-off oneDNN set-up is not part of the pass
    optimizer.zero_grad(set_to_none=True)
    started = time.perf_counter()
    for x, y in data:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def run(path: str | Path | None = None) -> list[dict]:
    path = (Path(path) if path else DEFAULT_DATA).resolve()
    samples, classes = image_folder(path / "train")
    warm_file_cache(samples)
    split = stratified_split([s.label for s in samples], 0.15, 0.0, seed=0)
    options = TrainOptions(mode="fine_tune", architecture="efficientnet_lite0", epochs=1, batch_size=BATCH,
                           val_fraction=0.15, test_fraction=0.0)
    marks: dict[str, float] = {}

    def progress(event):
        now = time.perf_counter()
        if event["phase"] == "training":
            marks.setdefault("start", now)
            if event["epoch"] == 1 and event["step"] == event["steps"] and not event["message"]:
                marks["last_step"] = now

    with tempfile.TemporaryDirectory() as tmp:
        result = train(TrainInputs(samples, classes, split=split), options, tmp, Hooks(progress=progress),
                       TrainSetup(export=False))
    epoch_s = marks["last_step"] - marks["start"]
    steps = len(split["train"]) // BATCH + (1 if len(split["train"]) % BATCH > 1 else 0)
    plan = [split["train"][i * BATCH:(i + 1) * BATCH] for i in range(steps)]
    plan[-1] = split["train"][(steps - 1) * BATCH:]
    info = result.options
    from app.ml import get_architecture

    arch = get_architecture(info["architecture"])
    bare_s = bare_steps_seconds(samples, plan, arch.mean, arch.std)
    ratio = epoch_s / bare_s
    print(f"{len(split['train'])} training images, {steps} steps of <= {BATCH}; fine-tune epoch "
          f"{epoch_s:.2f}s, bare steps {bare_s:.2f}s, val acc after 1 epoch {result.history[0]['val_acc']:.3f}")
    return [
        row("fine-tune epoch / bare fwd+bwd+step (same batches)", ratio, "<= 1.3", ratio <= 1.3),
        row("fine-tune epoch wall time (train steps), s", epoch_s, "info", True),
        row("bare fwd+bwd+step wall time, s", bare_s, "info", True),
    ]


if __name__ == "__main__":
    print_table(run(sys.argv[1] if len(sys.argv) > 1 else None), "bench/finetune_epoch.py")
