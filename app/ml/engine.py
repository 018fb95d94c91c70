"""train(): split, train in the chosen mode, evaluate on the test split, export artifacts."""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from . import artifacts, data
from .architectures import ArchInfo, ClassifierModel, build_model, get_architecture
from .data import Sample
from .errors import ExportMismatch, NotTrainable
from .words import N_, line
from .export import CardInfo, export_model
from .loop import LoopSpec, run_epochs, val_scores
from .metrics import classification_report
from .options import TrainOptions
from .progress import PHASE_WEIGHTS, Hooks, ProgressReporter
from .pipeline import resolve_threads
from .quick import train_quick
from .runtime import Prefetcher, cudnn_autotune, padded_rows, resolve_device, seed_everything, to_device_images

log = logging.getLogger(__name__)
EVAL_BATCH = 16  # small batches are faster on CPU for these networks (cache-friendly)


@dataclass
class TrainResult:
    """Everything a caller stores about a finished run. Split indices index the samples list."""

    classes: list[str]
    options: dict
    split: dict[str, list[int]]
    split_image_ids: dict[str, list[int]]
    history: list[dict]
    best_epoch: int | None
    best_val_acc: float | None
    stopped_early: bool
    test_metrics: dict | None
    artifacts: dict[str, str]
    device: str
    seconds: float
    embedding_stats: dict | None = None
    extra: dict = field(default_factory=dict)
    val_metrics: dict | None = None     # the final model on the validation images (predictions included)
    stop_reason: str | None = None      # why training stopped before its last epoch, in words
    stop_line: dict | None = None       # the same as an app.ml.words line (shown translated)
    start_epoch: int = 0                # continuing a checkpoint: the epoch it had reached

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainInputs:
    """What to learn from: samples, the class names their labels index, and optionally a frozen split."""

    samples: Sequence[Sample]
    classes: Sequence[str]
    split: Mapping[str, Sequence[int]] | None = None  # None: a stratified split from the options
    sample_keys: Sequence[str] | None = None          # sha256 of each file (feature store); None: hashed
    metadata: Mapping[str, Any] | None = None         # written into the model card
    checkpoint: str | Path | None = None              # continue from this checkpoint.pt ("Train more")


@dataclass(frozen=True)
class TrainSetup:
    """Where and how to run. device None: CUDA when present. feature_dir: the dataset's feature stores
    (quick mode keeps backbone features there, by image id; None: not kept). backbone_dir: exported
    backbones, so quick mode runs the backbone through ONNX Runtime on CPU (None: torch). threads:
    decoding and ONNX Runtime threads (0: all cores). image_cache_bytes caps the memory kept for
    decoded training images (None: no cap). export False skips TorchScript/ONNX (tests, benches)."""

    device: str | torch.device | None = None
    feature_dir: str | Path | None = None
    backbone_dir: str | Path | None = None
    threads: int = 0
    image_cache_bytes: int | None = None
    export: bool = True


@dataclass
class _Run:
    samples: list[Sample]
    classes: list[str]
    options: TrainOptions
    arch: ArchInfo
    split: dict[str, list[int]]
    device: torch.device
    progress: ProgressReporter
    image_size: int
    setup: TrainSetup
    inputs: TrainInputs
    head: str = "linear"   # the head the model ended with (quick mode may choose it)
    prebuilt: Any = None   # compose.PrebuiltBackbone: exported copies of a frozen backbone
    resume: dict | None = None  # the checkpoint continued from (load_checkpoint)

    def labels(self, part: str) -> torch.Tensor:
        return torch.tensor([self.samples[i].label for i in self.split[part]], dtype=torch.long)

    def class_weights(self) -> torch.Tensor | None:
        if not self.options.class_balanced:
            return None
        counts = torch.bincount(self.labels("train"), minlength=len(self.classes)).float()
        weights = counts.sum() / (len(self.classes) * counts.clamp(min=1))
        return weights.to(self.device)


def _prepare_split(samples: Sequence[Sample], classes: Sequence[str], options: TrainOptions,
                   split: Mapping[str, Sequence[int]] | None) -> dict[str, list[int]]:
    if len(classes) < 2:
        raise NotTrainable.because(N_("At least two classes are needed."))
    for s in samples:
        if not 0 <= s.label < len(classes):
            raise ValueError(f"sample {s.image_id} has label {s.label} outside 0..{len(classes) - 1}")
    labels = [s.label for s in samples]
    if split is None:
        split = data.stratified_split(labels, options.val_fraction, options.test_fraction, options.seed)
    else:
        split = data.validate_split(split, len(samples))
    train_classes = {labels[i] for i in split["train"]}
    if len(train_classes) < 2:
        raise NotTrainable.because(N_("At least two classes need training images."))
    return split


def _start(inputs: TrainInputs, options: TrainOptions, hooks: Hooks | None, setup: TrainSetup) -> _Run:
    """Check the inputs, seed, pick the device: everything a mode needs to start training."""
    samples = list(inputs.samples)
    arch = get_architecture(options.architecture)
    run_split = _prepare_split(samples, inputs.classes, options, inputs.split)
    seed_everything(options.seed)
    dev = resolve_device(setup.device)
    resume = load_checkpoint(inputs, options, arch.name)
    weights = PHASE_WEIGHTS["quick" if options.mode == "quick" else "images"]
    start = int(resume["epoch"]) if resume else 0
    reporter = ProgressReporter(hooks, weights, start + options.resolved_epochs)
    log.info("training %s (%s) on %s: %s%s", arch.name, options.mode, dev,
             {k: len(v) for k, v in run_split.items()}, f", continuing after epoch {start}" if resume else "")
    return _Run(samples, list(inputs.classes), options, arch, run_split, dev, reporter,
                options.resolved_image_size, setup, inputs, resume=resume)


def load_checkpoint(inputs: TrainInputs, options: TrainOptions, architecture: str) -> dict | None:
    """The checkpoint to continue from, checked against what this run trains (same network, mode,
    image size, classes and head); None when not continuing. Raises NotTrainable when it does not fit."""
    if inputs.checkpoint is None:
        return None
    try:
        state = torch.load(inputs.checkpoint, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        log.warning("checkpoint %s unreadable: %s", inputs.checkpoint, exc)
        raise NotTrainable.because(N_("The checkpoint to continue from is missing or unreadable.")) from None
    wanted = {"architecture": architecture, "mode": options.mode, "image_size": options.resolved_image_size,
              "classes": list(inputs.classes)}
    if options.mode == "quick":
        wanted["head"] = options.head_candidates[0] if len(options.head_candidates) == 1 else "one head"
    differ = [key for key, value in wanted.items() if state.get(key) != value]
    if differ:
        raise NotTrainable.because(N_("The checkpoint does not fit this run (its %(settings)s differ)."),
                                  settings=", ".join(differ))
    return state


def train(inputs: TrainInputs, options: TrainOptions, out_dir: str | Path, hooks: Hooks | None = None,
          setup: TrainSetup | None = None) -> TrainResult:
    """Train a classifier and write its artifacts to out_dir.

    Raises ArchitectureUnavailable, NotTrainable, TrainingCancelled, ExportMismatch (all MLError).
    """
    started = time.perf_counter()
    run = _start(inputs, options, hooks, setup or TrainSetup())
    with cudnn_autotune(_autotunes(run)):
        return _train(run, out_dir, started)


def _autotunes(run: _Run) -> bool:
    """cuDNN autotuning pays off on long runs that train convolutions; on short ones it costs more than
    it saves, and quick mode's feature pass runs a fixed batch once."""
    return (run.device.type == "cuda" and run.options.mode != "quick"
            and len(run.split["train"]) * run.options.resolved_epochs >= 5000)


def _train(run: _Run, out_dir: str | Path, started: float) -> TrainResult:
    options = run.options
    extra: dict = {}
    if options.mode == "quick":
        quick = train_quick(run)
        model, loop, logits, stats = quick.model, quick.loop, quick.logits, quick.stats
        extra["head_choice"] = quick.head_choice
        run.prebuilt = quick.prebuilt
    else:
        model, loop, logits = _train_images(run)
        stats = None
    run.head = extra.get("head_choice", {}).get("chosen", "linear")
    run.progress.phase("evaluating")
    val_metrics, test_metrics = _report(run, "val", logits), _report(run, "test", logits)
    artifacts = _write_artifacts(run, model, loop, {"test": test_metrics, "validation": val_metrics}, Path(out_dir))
    run.progress.finish()
    return TrainResult(
        classes=run.classes, options=options.to_dict(), split=run.split,
        split_image_ids={k: [run.samples[i].image_id for i in v] for k, v in run.split.items()},
        history=loop.history, best_epoch=loop.best_epoch, best_val_acc=loop.best_val_acc,
        stopped_early=loop.stopped_early, test_metrics=test_metrics, artifacts=artifacts, device=str(run.device),
        seconds=time.perf_counter() - started, embedding_stats=stats.to_dict() if stats else None, extra=extra,
        val_metrics=val_metrics, stop_reason=loop.stop_reason, stop_line=loop.stop_line,
        start_epoch=int(run.resume["epoch"]) if run.resume else 0)


def _write_artifacts(run: _Run, model: nn.Module, loop, reports: dict, out: Path) -> dict[str, str]:
    """The checkpoint, then (unless the setup says not to) TorchScript, ONNX and the model card."""
    out.mkdir(parents=True, exist_ok=True)
    artifacts = _save_checkpoint(run, model, loop, out)
    if run.setup.export:
        run.progress.phase("exporting", line(N_("Exporting TorchScript and ONNX…")))
        card = CardInfo(
            classes=run.classes, arch_info=run.arch, image_size=run.image_size,
            resize_size=data.eval_resize_size(run.image_size),
            metrics={"test": _summary(reports["test"]), "validation": _summary(reports["validation"]),
                     "best_val_acc": loop.best_val_acc,
                     "best_epoch": loop.best_epoch, "best_metric": run.options.best_metric},
            metadata={"mode": run.options.mode, "head": run.head, "options": run.options.to_dict(),
                      "split_sizes": {k: len(v) for k, v in run.split.items()},
                      "start_epoch": int(run.resume["epoch"]) if run.resume else 0,
                      **dict(run.inputs.metadata or {})})
        artifacts.update(_export(run, model, out, card))
    return artifacts


def _export(run: _Run, model: nn.Module, out: Path, card: CardInfo) -> dict[str, str]:
    """Join the model's head to its backbone's cached exports when there are some (quick mode on
    CPU: a fraction of a second), else trace and export the whole network."""
    if run.prebuilt is not None:
        try:
            return export_model(model, out, card, prebuilt=run.prebuilt)
        except (ExportMismatch, ValueError, RuntimeError, OSError) as exc:
            log.warning("joining the cached backbone exports failed (%s); exporting the whole model", exc)
    return export_model(model, out, card)


def _summary(metrics: dict | None) -> dict | None:
    if metrics is None:
        return None
    return {k: v for k, v in metrics.items() if k not in ("misclassified", "predictions")}


def _report(run: _Run, part: str, logits: Callable[[str], torch.Tensor]) -> dict | None:
    """The final model's classification report on one split part ('val' or 'test'), per-image
    predictions included; None when the part is empty."""
    if not run.split[part]:
        return None
    probs = logits(part).softmax(1).numpy()
    y_true = run.labels(part).tolist()
    return classification_report(y_true, probs.argmax(1).tolist(), probs, run.classes,
                                 [run.samples[i].image_id for i in run.split[part]])


def _save_checkpoint(run: _Run, model: nn.Module, loop, out: Path) -> dict[str, str]:
    """checkpoint.pt: best model (full classifier), optimizer, scheduler, epoch, options."""
    path = out / artifacts.CHECKPOINT
    best = loop.best_state
    torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()},
                "optimizer": best["optimizer"], "scheduler": best["scheduler"], "epoch": best["epoch"],
                "options": run.options.to_dict(), "classes": run.classes, "architecture": run.arch.name,
                "image_size": run.image_size, "mode": run.options.mode, "head": run.head}, path)
    return {"checkpoint": str(path)}


# --- image modes: feature_extraction, fine_tune, scratch ------------------------------------

def _train_images(run: _Run):
    o, dev = run.options, run.device
    # continuing: the checkpoint holds every weight, so the pretrained file is not read again
    model = build_model(o.architecture, len(run.classes), pretrained=o.mode != "scratch" and run.resume is None,
                        image_size=run.image_size, dropout=o.dropout)
    if run.resume is not None:
        model.load_state_dict(run.resume["model"])
    model = model.to(dev, memory_format=torch.channels_last)
    cache = data.training_image_cache([s.path for s in run.samples], run.image_size, o.random_resized_crop,
                                      run.setup.image_cache_bytes)
    crops = _decode_for_training(run, cache)
    groups, set_mode = _param_groups(model, o)
    spec = LoopSpec(model=model, param_groups=groups, train_batches=_image_batches(run, cache),
                    steps_per_epoch=len(_batch_plan(run.split["train"], o.resolved_batch_size)),
                    evaluate_val=_image_val(run, model, crops["val"]), class_weights=run.class_weights(),
                    set_train_mode=set_mode, resume=run.resume)
    loop = run_epochs(spec, o, dev, run.progress)
    return model, loop, lambda part: _predict_logits(run, model, crops[part])


def _decode_for_training(run: _Run, cache: data.DecodedImageCache) -> dict[str, torch.Tensor | None]:
    """Decode every image once up front, on every core (reporting progress): training images into the
    cache, validation and test images straight to their evaluation crops (they are not needed again)."""
    total = sum(len(run.split[part]) for part in ("train", "val", "test"))
    run.progress.phase("preparing", line(N_("Decoding images…")))
    done = 0
    with ThreadPoolExecutor(resolve_threads(run.setup.threads), thread_name_prefix="decode") as pool:
        for _ in pool.map(cache.get, run.split["train"]):
            done += 1
            run.progress.emit(done, total, images=1)
        if len(run.split["train"]) > sum(i in cache for i in run.split["train"]):
            log.info("image cache full at %d MB: the rest of the training images are decoded every epoch",
                     cache.bytes // 2**20)
        crops: dict[str, torch.Tensor | None] = {}
        crop = lambda i: data.load_eval_crop(run.samples[i].path, run.image_size)  # noqa: E731
        for part in ("val", "test"):
            indices = run.split[part]
            # filled in place: a list of crops and its torch.stack would hold every crop twice at the end
            out = torch.empty((len(indices), 3, run.image_size, run.image_size), dtype=torch.uint8) if indices else None
            for row, image in enumerate(pool.map(crop, indices)):
                out[row] = image
                done += 1
                run.progress.emit(done, total, images=1)
            crops[part] = out
    return crops


def _param_groups(model: ClassifierModel, o: TrainOptions):
    lr = o.resolved_lr
    if o.mode == "feature_extraction":
        for p in model.backbone.parameters():
            p.requires_grad_(False)

        def set_mode():
            model.train()
            model.backbone.eval()  # frozen: keep BatchNorm statistics as pretrained
        return [{"params": list(model.head.parameters()), "lr": lr}], set_mode
    if o.mode == "fine_tune":
        def set_bn_frozen():
            # Small datasets and batches make BatchNorm statistics noisy and slow to settle (the
            # pretrained momentum is TF's 0.01), so by default (freeze_bn) keep the pretrained
            # statistics; the BN scale and shift are still trained. (Keras' transfer-learning guide
            # does the same.)
            model.train()
            for module in model.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return [{"params": list(model.backbone.parameters()), "lr": lr * o.backbone_lr_factor},
                {"params": list(model.head.parameters()), "lr": lr}], set_bn_frozen if o.freeze_bn else None
    return [{"params": list(model.parameters()), "lr": lr}], None


def _batch_plan(indices: Sequence[int], bs: int) -> list[list[int]]:
    batches = [list(indices[i:i + bs]) for i in range(0, len(indices), bs)]
    if len(batches) > 1 and len(batches[-1]) == 1:  # BatchNorm cannot train on a batch of one
        batches[-2].extend(batches.pop())
    return batches


def _image_batches(run: _Run, cache: data.DecodedImageCache):
    o = run.options
    augment = data.Augmenter(run.image_size, o.seed, o.random_resized_crop, o.hflip)
    train_idx = list(run.split["train"])
    pin = run.device.type == "cuda"

    # On a GPU one augmentation thread starves the model; parameters are still drawn in order from
    # the seeded generator, only the pixel work is spread over threads (torch releases the GIL).
    threads = min(8, os.cpu_count() or 1) if run.device.type == "cuda" else 1

    def batches(epoch: int):
        gen = torch.Generator().manual_seed(o.seed * 100003 + epoch)
        order = [train_idx[i] for i in torch.randperm(len(train_idx), generator=gen).tolist()]
        plan = _batch_plan(order, o.resolved_batch_size)
        with ThreadPoolExecutor(threads) as pool:
            def load(batch: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
                apply = pool.map if threads > 1 else map
                images = list(apply(cache.get, batch))  # decodes only what did not fit the cache
                params = [augment.plan(img) for img in images]
                mapped = apply(augment.apply, images, params)
                return torch.stack(list(mapped)), torch.tensor([run.samples[i].label for i in batch])

            with Prefetcher(load, plan, pin=pin) as loader:
                for images, labels in loader:
                    x = to_device_images(images, run.device, run.arch.mean, run.arch.std)
                    yield x, labels.to(run.device, non_blocking=True)

    return batches


def _predict_logits(run: _Run, model: nn.Module, crops: torch.Tensor) -> torch.Tensor:
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(crops), EVAL_BATCH):
            chunk = crops[start:start + EVAL_BATCH]
            n = len(chunk)
            if run.device.type == "cuda":  # the last, short chunk: no new shape for cuDNN to prepare plans for
                chunk = padded_rows(chunk, EVAL_BATCH)
            x = to_device_images(chunk, run.device, run.arch.mean, run.arch.std)
            with torch.autocast(run.device.type, enabled=run.device.type == "cuda"):
                out.append(model(x)[:n].float().cpu())
    return torch.cat(out)


def _image_val(run: _Run, model: nn.Module, crops: torch.Tensor | None):
    if crops is None:
        return lambda: None
    y_val = run.labels("val")

    def evaluate():
        logits = _predict_logits(run, model, crops)
        return nn.functional.cross_entropy(logits, y_val).item(), val_scores(logits, y_val, len(run.classes))

    return evaluate
