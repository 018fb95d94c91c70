"""The epoch loop shared by every mode: optimise, validate, keep the best, stop early."""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

from .options import TrainOptions
from .progress import ProgressReporter
from .runtime import amp_dtype

log = logging.getLogger(__name__)

Batches = Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]
EvalFn = Callable[[], "tuple[float, float] | None"]


@dataclass
class LoopSpec:
    """What to train and how to feed it."""

    model: nn.Module                       # the module being optimised (a head, or everything)
    param_groups: list[dict]
    train_batches: Batches                 # epoch -> iterator of (x, y) on device
    steps_per_epoch: int
    evaluate_val: EvalFn                   # -> (val_loss, val_acc), or None without a val set
    class_weights: torch.Tensor | None = None
    set_train_mode: Callable[[], None] | None = None


@dataclass
class LoopResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_acc: float | None = None
    best_state: dict | None = None         # {'model', 'optimizer', 'scheduler', 'epoch'}
    stopped_early: bool = False


def make_optimizer(options: TrainOptions, groups: list[dict]) -> torch.optim.Optimizer:
    if options.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=options.resolved_lr, momentum=options.momentum,
                               weight_decay=options.weight_decay, nesterov=True)
    return torch.optim.AdamW(groups, lr=options.resolved_lr, weight_decay=options.weight_decay)


def make_scheduler(options: TrainOptions, optimizer, steps_per_epoch: int):
    """Stepped once per optimiser step."""
    total = max(1, options.resolved_epochs * steps_per_epoch)
    if options.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if options.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=options.step_size * steps_per_epoch,
                                               gamma=options.gamma)
    if options.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                   total_steps=total)
    return None


def _improved(val_acc: float, val_loss: float, result: LoopResult, best_loss: float) -> bool:
    if result.best_val_acc is None or val_acc > result.best_val_acc:
        return True
    return val_acc == result.best_val_acc and val_loss < best_loss


def _train_epoch(spec, epoch, optimizer, scheduler, criterion, scaler, device, progress) -> dict:
    (spec.set_train_mode or spec.model.train)()
    dtype = amp_dtype(device)
    total_loss, correct, seen = 0.0, 0, 0
    epochs = progress.epochs
    for step, (x, y) in enumerate(spec.train_batches(epoch), 1):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = spec.model(x)
            loss = criterion(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        batch_loss = loss.item()
        total_loss += batch_loss * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        progress.emit((epoch - 1) * spec.steps_per_epoch + step, epochs * spec.steps_per_epoch, epoch=epoch,
                      step=step, steps=spec.steps_per_epoch, loss=batch_loss, train_acc=correct / seen,
                      images=len(y))
    return {"train_loss": total_loss / max(seen, 1), "train_acc": correct / max(seen, 1)}


def run_epochs(spec: LoopSpec, options: TrainOptions, device: torch.device,
               progress: ProgressReporter) -> LoopResult:
    """Train for options.resolved_epochs with early stopping; best kept by validation accuracy."""
    optimizer = make_optimizer(options, spec.param_groups)
    scheduler = make_scheduler(options, optimizer, spec.steps_per_epoch)
    criterion = nn.CrossEntropyLoss(weight=spec.class_weights, label_smoothing=options.label_smoothing)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype(device) == torch.float16)
    result, best_loss, stale = LoopResult(), math.inf, 0
    progress.phase("training")
    for epoch in range(1, options.resolved_epochs + 1):
        started = time.perf_counter()
        lr = optimizer.param_groups[-1]["lr"]
        row = {"epoch": epoch, **_train_epoch(spec, epoch, optimizer, scheduler, criterion, scaler,
                                              device, progress)}
        val = spec.evaluate_val()
        row.update({"val_loss": val[0] if val else None, "val_acc": val[1] if val else None,
                    "lr": lr, "seconds": time.perf_counter() - started})
        result.history.append(row)
        progress.val_acc = row["val_acc"]
        progress.emit(epoch * spec.steps_per_epoch, options.resolved_epochs * spec.steps_per_epoch,
                      epoch=epoch, step=spec.steps_per_epoch, steps=spec.steps_per_epoch,
                      loss=row["train_loss"], train_acc=row["train_acc"], message=f"Epoch {epoch} finished")
        if val is None or _improved(val[1], val[0], result, best_loss):
            best_loss = val[0] if val else math.inf
            result.best_epoch, result.best_val_acc, stale = epoch, row["val_acc"], 0
            result.best_state = {"model": copy.deepcopy(spec.model.state_dict()),
                                 "optimizer": copy.deepcopy(optimizer.state_dict()),
                                 "scheduler": copy.deepcopy(scheduler.state_dict()) if scheduler else None,
                                 "epoch": epoch}
        else:
            stale += 1
        log.debug("epoch %d: %s", epoch, row)
        patience = options.early_stopping_patience
        if val is not None and patience is not None and stale >= patience:
            result.stopped_early = True
            break
    spec.model.load_state_dict(result.best_state["model"])
    return result
