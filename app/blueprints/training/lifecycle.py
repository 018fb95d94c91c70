"""The life of a training run: its log, claiming it for a worker, live progress, storing the result,
and the reaper that fails runs whose worker died.

State machine of a run: queued -> running -> succeeded | failed | cancelled (queued -> cancelled too).
The RQ task (app.jobs.training.train_run) drives it; the pages read it.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from app.extensions import db
from app.jobs import DEAD_JOB_STATUSES, job_status
from app.jobs import queue_position as job_queue_position
from app.models import TrainingRun, utcnow
from app.storage import get_storage

log = logging.getLogger(__name__)

WRITE_INTERVAL_S = 0.5    # progress rows written at most twice a second
CANCEL_CHECK_S = 1.0      # the cancel flag is read from the database at most once a second
LOG_LIMIT = 300           # keep run.log small: the oldest entries go first
DEAD_WORKER_REASON = ("The worker running this training stopped unexpectedly (it was restarted, killed "
                      "or ran out of memory). Nothing was saved; you can retry the run.")
LOST_JOB_REASON = ("This run's job disappeared from the queue (the queue was reset or the job expired) "
                   "before a worker started it. You can retry the run.")


def append_log(run: TrainingRun, message: str) -> None:
    """Add one human-readable line to run.log (a new list, so SQLAlchemy sees the change)."""
    entries = list(run.log or [])[-(LOG_LIMIT - 1):]
    entries.append({"t": utcnow().isoformat(timespec="seconds") + "Z", "message": message})
    run.log = entries


def queue_position(run: TrainingRun) -> int | None:
    """1-based position of the run's job in the queue, None when it is not waiting there."""
    if run.status != "queued" or not run.job_id:
        return None
    return job_queue_position(run.job_id)


# --- running -----------------------------------------------------------------------------------

class RunReporter:
    """Progress callback + should_cancel for one run, throttling database traffic."""

    def __init__(self, run: TrainingRun):
        self.run = run
        self.run_id = run.id
        self.last_write = 0.0
        self.last_cancel_check = 0.0
        self.cancelled = False
        self.phase = None
        self.live_history: list[dict] = []
        self.history_written = 0
        self.pending_log: list[str] = []
        self.latest: dict = {}
        self.stage = None

    def __call__(self, progress: dict) -> None:
        self.latest = progress
        message = progress.get("message")
        urgent = False
        if progress.get("phase") != self.phase:
            self.phase = progress.get("phase")
            urgent = True
            if message and not message.startswith("Epoch"):
                self.pending_log.append(message.rstrip(".") + "…")
        if progress.get("stage") != self.stage:  # a new candidate head: its curves start afresh
            self.stage = progress.get("stage")
            self.live_history = []
            self.history_written = -1
            if self.stage:
                self.pending_log.append(f"Fitting the {self.stage.lower()}…")
        if message and message.startswith("Epoch") and progress.get("phase") == "training":
            self._epoch_finished(progress)
        if urgent or time.monotonic() - self.last_write >= WRITE_INTERVAL_S:
            self.flush()

    def _epoch_finished(self, p: dict) -> None:
        row = {"epoch": p.get("epoch"), "train_loss": p.get("loss"), "train_acc": p.get("train_acc"),
               "val_loss": None, "val_acc": p.get("val_acc"), "data_wait": p.get("data_wait")}
        self.live_history.append(row)
        epoch, epochs = p.get("epoch") or 0, p.get("epochs") or 0
        if epochs <= 20 or epoch % 10 == 0 or epoch == epochs:
            self.pending_log.append(epoch_line(p))

    def flush(self) -> None:
        """Write progress, live history, new log lines and the heartbeat in one commit."""
        run = self.run
        run.progress = dict(self.latest)
        run.heartbeat_at = utcnow()
        if len(self.live_history) != self.history_written:
            run.history = list(self.live_history)
            self.history_written = len(self.live_history)
        for message in self.pending_log:
            append_log(run, message)
        self.pending_log = []
        db.session.commit()
        self.last_write = time.monotonic()

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if not self.cancelled and now - self.last_cancel_check >= CANCEL_CHECK_S:
            self.last_cancel_check = now
            db.session.commit()  # end the read transaction so we see the web's latest commit
            self.cancelled = bool(db.session.scalar(
                select(TrainingRun.cancel_requested).where(TrainingRun.id == self.run_id)))
        return self.cancelled


def epoch_line(p: dict) -> str:
    """'Epoch 3/10: validation accuracy 81% (waited 0.4 s for images)' from an epoch-end progress event."""
    val = p.get("val_acc")
    tail = f"validation accuracy {val:.0%}" if val is not None else f"training accuracy {p.get('train_acc') or 0:.0%}"
    wait = p.get("data_wait")
    if wait is not None and p.get("stage") is None and wait >= 0.05:  # image modes: is loading keeping up?
        tail += f" (waited {wait:.1f} s for images)"
    prefix = f"{p['stage']}, epoch" if p.get("stage") else "Epoch"
    return f"{prefix} {p.get('epoch') or 0}/{p.get('epochs') or 0}: {tail}"


def claim(run_id: int, worker_name: str | None = None) -> TrainingRun | None:
    """queued -> running, atomically: a run cancelled meanwhile is never started (None then)."""
    now = utcnow()
    worker = worker_name or f"{socket.gethostname()}.{os.getpid()}"
    result = db.session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == run_id, TrainingRun.status == "queued",
               TrainingRun.cancel_requested.is_(False))
        .values(status="running", started_at=now, heartbeat_at=now, worker_name=worker[:120])
    )
    db.session.commit()
    return db.session.get(TrainingRun, run_id) if result.rowcount == 1 else None


def train_arguments(run: TrainingRun) -> tuple:
    """(inputs, options, out_dir, setup) for app.ml.engine.train from the run's frozen snapshot."""
    from app.ml.data import Sample
    from app.ml.engine import TrainInputs, TrainSetup
    from app.ml.options import TrainOptions

    storage = get_storage()
    rows = run.snapshot["samples"]
    samples = [Sample(int(image_id), str(storage.image_path(sha)), int(label)) for image_id, label, sha in rows]
    inputs = TrainInputs(samples, run.snapshot["classes"], split=run.snapshot["split"],
                         sample_keys=[sha for _, _, sha in rows],
                         metadata={"run_id": run.id, "dataset_id": run.dataset_id, "run_name": run.name})
    setup = TrainSetup(feature_dir=storage.feature_dir(run.dataset_id), backbone_dir=storage.backbone_dir,
                       threads=current_app.config["FEATURE_THREADS"],
                       image_cache_bytes=current_app.config["TRAIN_IMAGE_CACHE_MB"] * 2**20)
    return inputs, TrainOptions.from_dict(run.options), storage.run_dir(run.id), setup


# --- finishing -----------------------------------------------------------------------------------

def finish_cancelled(run: TrainingRun, reporter: RunReporter) -> None:
    """running -> cancelled, keeping the curves and log up to the moment it stopped."""
    reporter.flush()
    _finish(run, "cancelled", "Training was cancelled.")


def finish_failed(run: TrainingRun, exc: Exception) -> None:
    """running -> failed, with a plain sentence for the page (the traceback belongs in the worker log)."""
    db.session.rollback()
    _finish(run, "failed", failure_message(exc), error=failure_message(exc))


def finish_succeeded(run: TrainingRun, result) -> None:
    """running -> succeeded, storing the engine's metrics, history and artifact folder."""
    _store_result(run, result, str(get_storage().run_dir(run.id)))
    choice = (result.extra or {}).get("head_choice")
    if choice:
        append_log(run, choice["reason"])
    _finish(run, "succeeded", _success_line(result))


def failure_message(exc: Exception) -> str:
    """A plain sentence for the run page; details stay in the worker log."""
    from app.ml.errors import MLError

    if isinstance(exc, MLError):
        return exc.message
    if isinstance(exc, FileNotFoundError):
        return "An image of this dataset is missing from storage, so training could not read it."
    if isinstance(exc, MemoryError):
        return "The worker ran out of memory. Try a smaller batch size or image size."
    return f"Training stopped because of an unexpected error ({type(exc).__name__}: {exc})."[:500]


def _success_line(result) -> str:
    test = result.test_metrics or {}
    if test.get("count"):
        return f"Finished: correct on {round(test['accuracy'] * test['count'])} of {test['count']} test images."
    return "Finished."


def _store_result(run: TrainingRun, result, artifact_dir: str) -> None:
    metrics = dict(result.test_metrics or {})
    metrics.update({"best_epoch": result.best_epoch, "best_val_acc": result.best_val_acc,
                    "stopped_early": result.stopped_early, "device": result.device,
                    "seconds": result.seconds, "artifacts": result.artifacts,
                    "embedding_stats": result.embedding_stats,
                    "head_choice": (result.extra or {}).get("head_choice")})
    run.metrics = metrics
    run.history = list(result.history)
    run.artifact_dir = artifact_dir
    run.progress = {**(run.progress or {}), "fraction": 1.0, "eta_seconds": 0, "phase": "done"}


def _finish(run: TrainingRun, status: str, message: str, error: str | None = None) -> None:
    run.status = status
    run.error = error
    run.finished_at = utcnow()
    run.heartbeat_at = utcnow()
    append_log(run, message)
    db.session.commit()


# --- reaper --------------------------------------------------------------------------------------

def _fail(run: TrainingRun, reason: str) -> None:
    log.warning("train run=%s job=%s: %s -> failed (reaped)", run.id, run.job_id, run.status)
    run.status, run.error, run.finished_at = "failed", reason, utcnow()
    append_log(run, reason)


def reap_stale_runs(max_age_s: float = 60) -> int:
    """Fail runs whose worker is gone: running with a heartbeat older than max_age_s (or whose job
    RQ marked failed), queued whose job vanished. Returns how many runs were marked failed."""
    cutoff = utcnow() - timedelta(seconds=max_age_s)
    reaped = 0
    running = db.session.scalars(select(TrainingRun).where(TrainingRun.status == "running")).all()
    for run in running:
        beat = run.heartbeat_at or run.started_at
        stale = beat is None or beat < cutoff
        if stale or job_status(run.job_id) in DEAD_JOB_STATUSES[1:]:
            _fail(run, DEAD_WORKER_REASON)
            reaped += 1
    queued = db.session.scalars(select(TrainingRun).where(
        TrainingRun.status == "queued", TrainingRun.job_id.is_not(None),
        # a run is committed just before its job is enqueued: give that a moment
        TrainingRun.created_at < utcnow() - timedelta(seconds=5))).all()
    for run in queued:
        if job_status(run.job_id) in DEAD_JOB_STATUSES:
            _fail(run, LOST_JOB_REASON)
            reaped += 1
    db.session.commit()  # also ends the read transaction (a worker must not sit on one)
    return reaped


_last_reap = {"at": 0.0}


def maybe_reap(every_s: float = 5.0) -> None:
    """Reap at most every `every_s` seconds per process; cheap enough to call from page views."""
    now = time.monotonic()
    if now - _last_reap["at"] < every_s:
        return
    _last_reap["at"] = now
    try:
        reap_stale_runs(current_app.config["TRAIN_STALE_SECONDS"])
    except Exception:  # a page must still render when Redis hiccups
        db.session.rollback()
        log.exception("stale-run reaper failed")
