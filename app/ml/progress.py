"""Progress reporting and cancellation for a training run."""
from __future__ import annotations

import time
from typing import Callable

from .errors import TrainingCancelled

PHASE_WEIGHTS = {
    "quick": {"embedding": 0.75, "training": 0.15, "evaluating": 0.02, "exporting": 0.08},
    "images": {"preparing": 0.08, "training": 0.82, "evaluating": 0.03, "exporting": 0.07},
}


class ProgressReporter:
    """Turns loop positions into the progress dict; checks should_cancel at every step."""

    def __init__(self, callback: Callable[[dict], None] | None, should_cancel: Callable[[], bool] | None,
                 weights: dict[str, float], epochs: int):
        self.callback, self.should_cancel = callback, should_cancel
        self.weights, self.epochs = weights, epochs
        self.order = list(weights)
        self.started = time.perf_counter()
        self.phase_name, self.phase_started, self.phase_images = self.order[0], self.started, 0
        self.val_acc: float | None = None

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise TrainingCancelled("Training was cancelled.")

    def phase(self, name: str, message: str | None = None) -> None:
        self.check_cancel()
        self.phase_name, self.phase_started, self.phase_images = name, time.perf_counter(), 0
        self.emit(0, 1, message=message)

    def finish(self) -> None:
        """Final event: fraction 1.0."""
        self.phase_name = self.order[-1]
        self.emit(1, 1, message="Done")

    def _fraction(self, done: float, total: float) -> float:
        before = sum(self.weights[p] for p in self.order[: self.order.index(self.phase_name)])
        within = min(max(done / total, 0.0), 1.0) if total else 1.0
        return min(before + self.weights[self.phase_name] * within, 1.0)

    def emit(self, done: float, total: float, *, epoch: int = 0, step: int | None = None,
             steps: int | None = None, loss: float | None = None, train_acc: float | None = None,
             images: int = 0, message: str | None = None) -> None:
        """done/total: position inside the current phase (drives fraction and ETA)."""
        self.check_cancel()
        now = time.perf_counter()
        self.phase_images += images
        phase_elapsed = max(now - self.phase_started, 1e-9)
        fraction = self._fraction(done, total)
        elapsed = now - self.started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.01 else None
        if self.callback is None:
            return
        self.callback({
            "phase": self.phase_name, "epoch": epoch, "epochs": self.epochs,
            "step": step if step is not None else int(done), "steps": steps if steps is not None else int(total),
            "loss": loss, "train_acc": train_acc, "val_acc": self.val_acc,
            "images_per_sec": self.phase_images / phase_elapsed if self.phase_images else None,
            "eta_seconds": eta, "fraction": fraction, "elapsed_seconds": elapsed, "message": message,
        })
