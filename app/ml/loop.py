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
from .words import N_, line

log = logging.getLogger(__name__)

Batches = Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]
EvalFn = Callable[[], "tuple[float, dict] | None"]   # -> (val_loss, val_scores(...)) or None
SCORE_KEYS = {"accuracy": "val_acc", "balanced_accuracy": "val_balanced_acc", "macro_f1": "val_macro_f1"}
SCORE_LABELS = {"accuracy": N_("accuracy"), "balanced_accuracy": N_("balanced accuracy"), "macro_f1": N_("macro-F1")}


def val_scores(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """accuracy, balanced_accuracy (mean recall over the classes present) and macro_f1 (mean F1 over
    the classes present) of logits [N, C] against labels [N]."""
    predicted = logits.argmax(1).cpu()
    labels = labels.cpu()
    matrix = torch.bincount(labels * num_classes + predicted, minlength=num_classes ** 2)
    matrix = matrix.reshape(num_classes, num_classes).double()
    tp, support, said = matrix.diag(), matrix.sum(1), matrix.sum(0)
    present = support > 0
    recall = tp / support.clamp(min=1)
    precision = tp / said.clamp(min=1)
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12),
                     torch.zeros_like(tp))
    count = int(present.sum())
    return {"accuracy": float(tp.sum() / max(len(labels), 1)),
            "balanced_accuracy": float(recall[present].sum() / count) if count else 0.0,
            "macro_f1": float(f1[present].sum() / count) if count else 0.0}


@dataclass
class LoopSpec:
    """What to train and how to feed it."""

    model: nn.Module                       # the module being optimised (a head, or everything)
    param_groups: list[dict]
    train_batches: Batches                 # epoch -> iterator of (x, y) on device
    steps_per_epoch: int
    evaluate_val: EvalFn                   # -> (val_loss, val_scores), or None without a val set
    class_weights: torch.Tensor | None = None
    set_train_mode: Callable[[], None] | None = None
    resume: dict | None = None             # continue: {"optimizer": state_dict, "epoch": last epoch done}


@dataclass
class LoopResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_acc: float | None = None
    best_state: dict | None = None         # {'model', 'optimizer', 'scheduler', 'epoch'}
    stopped_early: bool = False
    best_score: float | None = None        # the options' best_metric at the best epoch
    stop_reason: str | None = None         # why training stopped before its last epoch, in words
    stop_line: dict | None = None          # the same as an app.ml.words line (shown translated)


def make_optimizer(options: TrainOptions, groups: list[dict]) -> torch.optim.Optimizer:
    if options.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=options.resolved_lr, momentum=options.momentum,
                               weight_decay=options.weight_decay,
                               nesterov=options.nesterov and options.momentum > 0)
    return torch.optim.AdamW(groups, lr=options.resolved_lr, weight_decay=options.weight_decay)


def resume_optimizer(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load a checkpoint's optimizer state (momentum buffers, Adam moments, step counts) into a fresh
    optimizer, keeping the fresh one's hyperparameters: the options decide learning rates, momentum
    and weight decay, and the schedule starts again over the new epochs (a warm restart)."""
    fresh = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, settings in zip(optimizer.param_groups, fresh):
        for key in [k for k in group if k not in settings and k != "params"]:
            del group[key]  # e.g. the old scheduler's initial_lr / max_lr
        group.update(settings)


def make_scheduler(options: TrainOptions, optimizer, steps_per_epoch: int):
    """Stepped once per optimiser step."""
    total = max(1, options.resolved_epochs * steps_per_epoch)
    if options.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if options.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=options.step_size * steps_per_epoch,
                                               gamma=options.gamma)
    if options.schedule == "onecycle":
        # cycle_momentum=False: torch would otherwise cycle momentum (AdamW: beta1) between 0.85 and
        # 0.95 over the user's setting; the momentum option is honoured as set.
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                   total_steps=total, cycle_momentum=False)
    return None


def _improved(score: float, val_loss: float, result: LoopResult, best_loss: float) -> bool:
    if result.best_score is None or score > result.best_score:
        return True
    return score == result.best_score and val_loss < best_loss


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
    if spec.resume is not None:
        resume_optimizer(optimizer, spec.resume["optimizer"])
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


def _start_epoch(spec: LoopSpec) -> int:
    return int(spec.resume["epoch"]) if spec.resume else 0


def _train_epoch(spec: LoopSpec, epoch: int, opt: _Optimisation, progress: ProgressReporter) -> dict:
    (spec.set_train_mode or spec.model.train)()
    total_loss, correct, seen = 0.0, 0, 0
    start = _start_epoch(spec)
    total_steps = (progress.epochs - start) * spec.steps_per_epoch
    waited = [0.0]
    for step, (x, y) in enumerate(_timed(iter(spec.train_batches(epoch)), waited), 1):
        logits = opt.step(spec.model, x, y)
        total_loss += opt.last_loss * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        progress.emit((epoch - start - 1) * spec.steps_per_epoch + step, total_steps, images=len(y),
                      step=StepInfo(epoch, step, spec.steps_per_epoch, opt.last_loss, correct / seen))
    return {"train_loss": total_loss / max(seen, 1), "train_acc": correct / max(seen, 1),
            "data_wait": round(waited[0], 4)}


def _learning_rates(opt: _Optimisation) -> dict:
    """The learning rates this epoch starts with: the head's (the last group) and, when the backbone
    learns at its own rate (fine-tune), the backbone's."""
    groups = opt.optimizer.param_groups
    return {"lr": groups[-1]["lr"], "lr_head": groups[-1]["lr"],
            "lr_backbone": groups[0]["lr"] if len(groups) > 1 else None}


def _epoch_row(spec: LoopSpec, epoch: int, opt: _Optimisation,
               progress: ProgressReporter) -> tuple[dict, tuple | None]:
    """Train one epoch and validate: (the history row, (val_loss, val_scores) or None)."""
    started = time.perf_counter()
    rates = _learning_rates(opt)
    row = {"epoch": epoch, **_train_epoch(spec, epoch, opt, progress)}
    val = spec.evaluate_val()
    scores = val[1] if val else {}
    row.update({"val_loss": val[0] if val else None, "val_acc": scores.get("accuracy"),
                "val_balanced_acc": scores.get("balanced_accuracy"), "val_macro_f1": scores.get("macro_f1"),
                **rates, "seconds": time.perf_counter() - started})
    progress.val_acc = row["val_acc"]
    start = _start_epoch(spec)
    progress.emit((epoch - start) * spec.steps_per_epoch, (progress.epochs - start) * spec.steps_per_epoch,
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


STOP_REASON = N_("Stopped early after epoch %(epoch)s of %(last)s: validation %(measure_word)s had not improved for "
                 "%(patience)s epochs (early-stopping patience); the best was %(best_pct1)s at epoch %(best_epoch)s, "
                 "the epoch kept.")  # not "the model kept": in quick mode each candidate head stops on its own
# The same, as the logs of runs trained before stop 29 keep it: still in the catalog so they read translated.
EARLIER_STOP_REASON = N_("Stopped early after epoch %(epoch)s of %(last)s: validation %(measure_word)s had not "
                         "improved for %(patience)s epochs (early-stopping patience); the best was %(best_pct1)s at "
                         "epoch %(best_epoch)s, which is the model kept.")


def _stop_line(result: LoopResult, options: TrainOptions, epoch: int, last: int) -> dict:
    return line(STOP_REASON, epoch=epoch, last=last, measure_word=SCORE_LABELS[options.best_metric],
                patience=options.early_stopping_patience, best_pct1=result.best_score, best_epoch=result.best_epoch)


def run_epochs(spec: LoopSpec, options: TrainOptions, device: torch.device,
               progress: ProgressReporter) -> LoopResult:
    """Train for options.resolved_epochs (after spec.resume's epoch when continuing) with early
    stopping; the best epoch is kept by the validation score options.best_metric names."""
    opt = _optimisation(spec, options, device)
    result, best_loss, stale = LoopResult(), math.inf, 0
    if progress.phase_name != "training":  # a second head fitted in the same phase continues it
        progress.phase("training")
    start = _start_epoch(spec)
    last = start + options.resolved_epochs
    for epoch in range(start + 1, last + 1):
        row, val = _epoch_row(spec, epoch, opt, progress)
        result.history.append(row)
        score = row[SCORE_KEYS[options.best_metric]] if val else None
        if val is None or _improved(score, val[0], result, best_loss):
            best_loss = val[0] if val else math.inf
            result.best_epoch, result.best_val_acc, result.best_score, stale = epoch, row["val_acc"], score, 0
            _keep_best(result, spec, opt, epoch)
        else:
            stale += 1
        patience = options.early_stopping_patience
        if val is not None and patience is not None and stale >= patience and epoch < last:
            result.stopped_early = True
            result.stop_line = _stop_line(result, options, epoch, last)
            result.stop_reason = result.stop_line["message"]
            progress.note(result.stop_line)
            break
    spec.model.load_state_dict(result.best_state["model"])
    return result
