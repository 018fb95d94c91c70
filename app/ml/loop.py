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
from .progress import ProgressReporter, StepInfo
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


@dataclass
class _Optimisation:
    """What one optimiser step needs besides the batch."""

    optimizer: torch.optim.Optimizer
    scheduler: object | None
    criterion: nn.Module
    scaler: torch.amp.GradScaler
    device: torch.device
    last_loss: float = 0.0

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One forward/backward/update; returns the logits."""
        dtype = amp_dtype(self.device)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x)
            loss = self.criterion(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        self.last_loss = loss.item()
        return logits


def _optimisation(spec: LoopSpec, options: TrainOptions, device: torch.device) -> _Optimisation:
    optimizer = make_optimizer(options, spec.param_groups)
    return _Optimisation(
        optimizer=optimizer, scheduler=make_scheduler(options, optimizer, spec.steps_per_epoch),
        criterion=nn.CrossEntropyLoss(weight=spec.class_weights, label_smoothing=options.label_smoothing),
        scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype(device) == torch.float16), device=device)


def _timed(batches: Iterator, waited: list[float]) -> Iterator:
    """The batches, adding to waited[0] the seconds spent waiting for each one (data loading that
    the model step did not hide)."""
    while True:
        started = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            return
        waited[0] += time.perf_counter() - started
        yield batch


def _train_epoch(spec: LoopSpec, epoch: int, opt: _Optimisation, progress: ProgressReporter) -> dict:
    (spec.set_train_mode or spec.model.train)()
    total_loss, correct, seen = 0.0, 0, 0
    total_steps = progress.epochs * spec.steps_per_epoch
    waited = [0.0]
    for step, (x, y) in enumerate(_timed(iter(spec.train_batches(epoch)), waited), 1):
        logits = opt.step(spec.model, x, y)
        total_loss += opt.last_loss * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        progress.emit((epoch - 1) * spec.steps_per_epoch + step, total_steps, images=len(y),
                      step=StepInfo(epoch, step, spec.steps_per_epoch, opt.last_loss, correct / seen))
    return {"train_loss": total_loss / max(seen, 1), "train_acc": correct / max(seen, 1),
            "data_wait": round(waited[0], 4)}


def _epoch_row(spec: LoopSpec, epoch: int, opt: _Optimisation,
               progress: ProgressReporter) -> tuple[dict, tuple | None]:
    """Train one epoch and validate: (the history row, (val_loss, val_acc) or None)."""
    started = time.perf_counter()
    lr = opt.optimizer.param_groups[-1]["lr"]
    row = {"epoch": epoch, **_train_epoch(spec, epoch, opt, progress)}
    val = spec.evaluate_val()
    row.update({"val_loss": val[0] if val else None, "val_acc": val[1] if val else None,
                "lr": lr, "seconds": time.perf_counter() - started})
    progress.val_acc = row["val_acc"]
    progress.emit(epoch * spec.steps_per_epoch, progress.epochs * spec.steps_per_epoch,
                  message=f"Epoch {epoch} finished",
                  step=StepInfo(epoch, spec.steps_per_epoch, spec.steps_per_epoch, row["train_loss"],
                                row["train_acc"], row["data_wait"]))
    log.log(logging.INFO if row["seconds"] >= 1 else logging.DEBUG,
            "epoch %d: %.1f s, waited %.1f s for data (%.0f%%), val acc %s", epoch, row["seconds"],
            row["data_wait"], 100 * row["data_wait"] / max(row["seconds"], 1e-9), row["val_acc"])
    return row, val


def _keep_best(result: LoopResult, spec: LoopSpec, opt: _Optimisation, epoch: int) -> None:
    result.best_state = {"model": copy.deepcopy(spec.model.state_dict()),
                         "optimizer": copy.deepcopy(opt.optimizer.state_dict()),
                         "scheduler": copy.deepcopy(opt.scheduler.state_dict()) if opt.scheduler else None,
                         "epoch": epoch}


def run_epochs(spec: LoopSpec, options: TrainOptions, device: torch.device,
               progress: ProgressReporter) -> LoopResult:
    """Train for options.resolved_epochs with early stopping; best kept by validation accuracy."""
    opt = _optimisation(spec, options, device)
    result, best_loss, stale = LoopResult(), math.inf, 0
    if progress.phase_name != "training":  # a second head fitted in the same phase continues it
        progress.phase("training")
    for epoch in range(1, options.resolved_epochs + 1):
        row, val = _epoch_row(spec, epoch, opt, progress)
        result.history.append(row)
        if val is None or _improved(val[1], val[0], result, best_loss):
            best_loss = val[0] if val else math.inf
            result.best_epoch, result.best_val_acc, stale = epoch, row["val_acc"], 0
            _keep_best(result, spec, opt, epoch)
        else:
            stale += 1
        patience = options.early_stopping_patience
        if val is not None and patience is not None and stale >= patience:
            result.stopped_early = True
            break
    spec.model.load_state_dict(result.best_state["model"])
    return result
