"""Progress reporting and cancellation for a training run."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from .errors import TrainingCancelled
from .words import N_

PHASE_WEIGHTS = {
    "quick": {"embedding": 0.75, "training": 0.15, "evaluating": 0.02, "exporting": 0.08},
    "images": {"preparing": 0.08, "training": 0.82, "evaluating": 0.03, "exporting": 0.07},
}


@dataclass(frozen=True)
class Hooks:
    """How a caller follows a run: progress(dict) after each step, should_cancel() polled at each step."""

    progress: Callable[[dict], None] | None = None
    should_cancel: Callable[[], bool] | None = None


@dataclass(frozen=True)
class StepInfo:
    """Where the epoch loop is: epoch, step of steps, the last batch loss, training accuracy so far."""

    epoch: int
    step: int
    steps: int
    loss: float | None = None
    train_acc: float | None = None
    data_wait: float | None = None   # seconds this epoch spent waiting for batches (epoch end only)


class ProgressReporter:
    """Turns loop positions into the progress dict; checks should_cancel at every step."""

    def __init__(self, hooks: Hooks | None, weights: dict[str, float], epochs: int):
        hooks = hooks or Hooks()
        self.callback, self.should_cancel = hooks.progress, hooks.should_cancel
        self.weights, self.epochs = weights, epochs
        self.order = list(weights)
        self.started = time.perf_counter()
        self.phase_name, self.phase_started, self.phase_images = self.order[0], self.started, 0
        self.val_acc: float | None = None
        self.stage: str | None = None               # e.g. which head is being fitted
        self.span: tuple[float, float] = (0.0, 1.0)  # the stage's share of the current phase
        self.last: dict = {}                         # the latest event sent

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise TrainingCancelled.because(N_("Training was cancelled."))

    def phase(self, name: str, message: str | dict | None = None) -> None:
        """Enter phase `name`; `message` says what it does: an app.ml.words line (its English text goes out
        as "message", the line itself as "line", which a page shows in the reader's language) or text."""
        self.check_cancel()
        self.phase_name, self.phase_started, self.phase_images = name, time.perf_counter(), 0
        self.stage, self.span = None, (0.0, 1.0)
        self.emit(0, 1, message=message)

    def start_stage(self, name: str, index: int, count: int) -> None:
        """Split the current phase into `count` equal stages (fitted one after the other) and enter
        stage `index`: positions inside it map onto its share, so the fraction never goes back."""
        self.stage, self.span = name, (index / count, (index + 1) / count)
        self.val_acc = None

    def note(self, message: str | dict) -> None:
        """Tell the caller something worth keeping in the run's log (e.g. why training stopped early):
        the latest event again, with this message and note=True (an app.ml.words line also as "line")."""
        if self.callback is not None:
            self.callback({**self.last, "stage": self.stage, "line": None, **_said(message), "note": True})

    def finish(self) -> None:
        """Final event: fraction 1.0."""
        self.phase_name = self.order[-1]
        self.emit(1, 1, message="Done")

    def _fraction(self, done: float, total: float) -> float:
        before = sum(self.weights[p] for p in self.order[: self.order.index(self.phase_name)])
        within = min(max(done / total, 0.0), 1.0) if total else 1.0
        within = self.span[0] + (self.span[1] - self.span[0]) * within
        return min(before + self.weights[self.phase_name] * within, 1.0)

    def emit(self, done: float, total: float, *, images: int = 0, message: str | dict | None = None,
             step: StepInfo | None = None) -> None:
        """done/total: position inside the current phase (drives fraction and ETA); step: the epoch
        loop's position, when training; message: text, or an app.ml.words line (sent also as "line")."""
        self.check_cancel()
        now = time.perf_counter()
        self.phase_images += images
        phase_elapsed = max(now - self.phase_started, 1e-9)
        fraction = self._fraction(done, total)
        elapsed = now - self.started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.01 else None
        if self.callback is None:
            return
        step = step or StepInfo(0, int(done), int(total))
        self.last = {
            "phase": self.phase_name, "epoch": step.epoch, "epochs": self.epochs,
            "step": step.step, "steps": step.steps,
            "loss": step.loss, "train_acc": step.train_acc, "val_acc": self.val_acc,
            "images_per_sec": self.phase_images / phase_elapsed if self.phase_images else None,
            "eta_seconds": eta, "fraction": fraction, "elapsed_seconds": elapsed,
            "stage": self.stage, "data_wait": step.data_wait, **_said(message),
        }
        self.callback(self.last)


def _said(message: str | dict | None) -> dict:
    """The event's "message" (English text) and, for an app.ml.words line, "line" too."""
    if isinstance(message, dict):
        return {"message": message["message"], "line": message}
    return {"message": message}
