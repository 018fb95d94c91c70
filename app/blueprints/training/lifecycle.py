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
from typing import Sequence

from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import DBAPIError

from app.i18n import N_, stored_line
from app.blueprints.training.results import GALLERY_LIMIT
from app.blueprints.webhooks.services import notify as notify_webhooks
from app.database import is_transient, retry_write
from app.extensions import db
from app.jobs import DEAD_JOB_STATUSES, Heartbeat, is_beating, job_status
from app.jobs import queue_position as job_queue_position
from app.models import TrainingRun, utcnow
from app.filestore import image_key, run_key, run_prefix
from app.storage import get_storage

log = logging.getLogger(__name__)

WRITE_INTERVAL_S = 0.5    # progress rows written at most twice a second
CANCEL_CHECK_S = 1.0      # the cancel flag is read from the database at most once a second
LOG_LIMIT = 300           # keep run.log small: the oldest entries go first
PROGRESS_RETRY_S = 10.0   # a progress write retries a busy database this long, then waits for the next one
RETRY_LATER_S = 5.0       # ...which comes this much later than usual (phase changes still try at once)
ORPHAN_AFTER = timedelta(minutes=10)  # a queued run that never got a job (its web process died meanwhile)
# Stored in English (jobs have no request); marked N_ so the run page shows them translated (|tr).
DEAD_WORKER_REASON = N_("The worker running this training stopped unexpectedly (it was restarted, killed "
                        "or ran out of memory). Nothing was saved; you can retry the run.")
LOST_JOB_REASON = N_("This run's job disappeared from the queue (the queue was reset or the job expired) "
                     "before a worker started it. You can retry the run.")
NEVER_QUEUED_REASON = N_("This run was never queued: the server stopped while it was being prepared. "
                         "Start a new training.")
# Quick mode's stages (app.ml.quick.HEAD_NAMES, which marks them for the catalog) inside a sentence.
STAGE_IN_TEXT = {"Linear head": N_("linear head"), "MLP head": N_("MLP head")}


def append_log(run: TrainingRun, message: str | dict) -> None:
    """Add one human-readable line to run.log (a new list, so SQLAlchemy sees the change): a plain
    English message, or an app.i18n.stored_line that the run page shows in the reader's language."""
    entries = list(run.log or [])[-(LOG_LIMIT - 1):]
    line = message if isinstance(message, dict) else {"message": message}
    entries.append({"t": utcnow().isoformat(timespec="seconds") + "Z", **line})
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
        self.pending_log: list[str | dict] = []
        self.latest: dict = {}
        self.stage = None
        self.unlogged_epoch: dict | None = None  # the latest epoch line not yet logged (see _keep_last_epoch)

    def __call__(self, progress: dict) -> None:
        message = progress.get("message")
        if progress.get("note"):  # e.g. why training stopped early: logged at once, after its last epoch
            self._keep_last_epoch()
            note = progress.get("line") or message
            self.pending_log.append(stored_line(N_("%(stage_word)s: %(note)s"), stage_word=progress["stage"], note=note)
                                    if progress.get("stage") else note)
            self.flush()
            return
        self.latest = {key: value for key, value in progress.items() if key != "line"}  # the row stays small
        urgent = False
        if progress.get("phase") != self.phase:
            self._keep_last_epoch()
            self.phase = progress.get("phase")
            urgent = True
            if progress.get("line"):  # the ML library's words line ("Decoding images…"): shown translated
                self.pending_log.append(progress["line"])
            elif message and not message.startswith("Epoch"):
                self.pending_log.append(message.rstrip(".") + "…")
        if progress.get("stage") != self.stage:  # a new candidate head: its curves start afresh
            self._keep_last_epoch()
            self.stage = progress.get("stage")
            self.live_history = []
            self.history_written = -1
            if self.stage:
                self.pending_log.append(stored_line(N_("Fitting the %(stage_word)s…"),
                                                    stage_word=STAGE_IN_TEXT.get(self.stage, self.stage.lower())))
        if message and message.startswith("Epoch") and progress.get("phase") == "training":
            self._epoch_finished(progress)
        if urgent or time.monotonic() - self.last_write >= WRITE_INTERVAL_S:
            self.flush()

    def _epoch_finished(self, p: dict) -> None:
        row = {"epoch": p.get("epoch"), "train_loss": p.get("loss"), "train_acc": p.get("train_acc"),
               "val_loss": None, "val_acc": p.get("val_acc"), "data_wait": p.get("data_wait")}
        self.live_history.append(row)
        epoch, epochs = p.get("epoch") or 0, p.get("epochs") or 0
        first = len(self.live_history) == 1
        if epochs <= 20 or first or epoch % 10 == 0 or epoch == epochs:
            self.pending_log.append(epoch_line(p))
            self.unlogged_epoch = None
        else:
            self.unlogged_epoch = epoch_line(p)

    def _keep_last_epoch(self) -> None:
        """Long runs log every tenth epoch; the epoch a stage or the training ended on is logged too
        (e.g. a 60-epoch run that stops early at epoch 8)."""
        if self.unlogged_epoch:
            self.pending_log.append(self.unlogged_epoch)
            self.unlogged_epoch = None

    def flush(self, budget_s: float = PROGRESS_RETRY_S) -> bool:
        """Write progress, live history, new log lines and the heartbeat in one commit.

        A busy or unreachable database is retried for `budget_s` seconds; if it stays busy the update
        is kept for the next flush and training goes on (the Redis heartbeat says it is alive).
        Returns whether it was written."""
        try:
            retry_write(self._write, budget_s, f"progress of run {self.run_id}")
        except DBAPIError as exc:
            if not is_transient(exc):
                raise
            log.warning("train run=%s: progress not written (database busy), trying again later", self.run_id)
            self.last_write = time.monotonic() + RETRY_LATER_S  # train on meanwhile instead of waiting again
            return False
        return True

    def _write(self) -> None:
        run = self.run
        run.progress = dict(self.latest)
        run.heartbeat_at = utcnow()
        if len(self.live_history) != self.history_written:
            run.history = list(self.live_history)
        for message in self.pending_log:
            append_log(run, message)
        db.session.commit()
        self.history_written = len(self.live_history)
        self.pending_log = []
        self.last_write = time.monotonic()

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if not self.cancelled and now - self.last_cancel_check >= CANCEL_CHECK_S:
            self.last_cancel_check = now
            try:
                db.session.commit()  # end the read transaction so we see the web's latest commit
                self.cancelled = bool(db.session.scalar(
                    select(TrainingRun.cancel_requested).where(TrainingRun.id == self.run_id)))
            except DBAPIError as exc:  # asked again a second later
                db.session.rollback()
                if not is_transient(exc):
                    raise
        return self.cancelled


# (in a quick-mode stage, validation accuracy known, waited for images) -> the epoch line's template
EPOCH_LINES = {
    (False, True, False): N_("Epoch %(epoch)s/%(epochs)s: validation accuracy %(accuracy_pct)s"),
    (False, False, False): N_("Epoch %(epoch)s/%(epochs)s: training accuracy %(accuracy_pct)s"),
    (False, True, True): N_("Epoch %(epoch)s/%(epochs)s: validation accuracy %(accuracy_pct)s "
                            "(waited %(wait_s)s s for images)"),
    (False, False, True): N_("Epoch %(epoch)s/%(epochs)s: training accuracy %(accuracy_pct)s "
                             "(waited %(wait_s)s s for images)"),
    (True, True, False): N_("%(stage_word)s, epoch %(epoch)s/%(epochs)s: validation accuracy %(accuracy_pct)s"),
    (True, False, False): N_("%(stage_word)s, epoch %(epoch)s/%(epochs)s: training accuracy %(accuracy_pct)s"),
}


def epoch_line(p: dict) -> dict:
    """'Epoch 3/10: validation accuracy 81% (waited 0.4 s for images)' from an epoch-end progress event
    (a stored_line: the run page shows it in the reader's language)."""
    val, wait, stage = p.get("val_acc"), p.get("data_wait"), p.get("stage")
    waited = not stage and wait is not None and wait >= 0.05  # image modes: is loading keeping up?
    values = {"epoch": p.get("epoch") or 0, "epochs": p.get("epochs") or 0,
              "accuracy_pct": val if val is not None else (p.get("train_acc") or 0)}
    if stage:
        values["stage_word"] = stage  # app.ml.quick.HEAD_NAMES: in the catalog
    if waited:
        values["wait_s"] = wait
    return stored_line(EPOCH_LINES[(bool(stage), val is not None, waited)], **values)


def _retry_budget() -> float:
    return float(current_app.config["TRAIN_DB_RETRY_SECONDS"])


def heartbeat(run_id: int) -> Heartbeat:
    """The Redis heartbeat a training job keeps while it holds run `run_id` (see reap_stale_runs)."""
    return Heartbeat(f"run-{run_id}", current_app.config["TRAIN_STALE_SECONDS"])


def claim(run_id: int, worker_name: str | None = None) -> TrainingRun | None:
    """queued -> running, atomically: a run cancelled meanwhile is never started (None then)."""
    worker = (worker_name or f"{socket.gethostname()}.{os.getpid()}")[:120]

    def write() -> int:
        now = utcnow()
        result = db.session.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run_id, TrainingRun.status == "queued",
                   TrainingRun.cancel_requested.is_(False))
            .values(status="running", started_at=now, heartbeat_at=now, worker_name=worker))
        db.session.commit()
        return result.rowcount

    claimed = retry_write(write, _retry_budget(), f"claim of run {run_id}")
    return db.session.get(TrainingRun, run_id) if claimed == 1 else None


def prepare_samples(run: TrainingRun, reporter: RunReporter) -> None:
    """The run's "Preparing the image list" phase: its images frozen at the start become its sample list
    (training/samples.py), with progress on the run page; nothing to do for a list prepared before."""
    from app.blueprints.training import samples as frozen

    def progress(done: int, total: int) -> None:
        reporter({"phase": "listing", "fraction": done / total if total else 1.0, "step": done, "steps": total,
                  "line": stored_line(N_("Preparing the list of %(images)s images…"), images=total)})

    frozen.prepare(run, progress, reporter.should_cancel, _retry_budget())


def train_arguments(run: TrainingRun) -> tuple:
    """(inputs, options, out_dir, setup) for app.ml.engine.train from the run's frozen sample list."""
    from app.blueprints.training import samples as frozen
    from app.ml.data import Sample
    from app.ml.engine import TrainInputs, TrainSetup
    from app.ml.artifacts import CHECKPOINT
    from app.ml.options import TrainOptions

    storage = get_storage()
    rows, split = frozen.load(run.id)
    # references, not paths: with a bucket each image is fetched into the worker's cache when first read
    samples = [Sample(image_id, storage.ref(image_key(sha)), label) for image_id, label, sha in rows]
    checkpoint = storage.local_path(run_key(run.continued_from_id, CHECKPOINT)) if run.continued_from_id else None
    inputs = TrainInputs(samples, list(run.classes), split=split, sample_keys=[sha for _, _, sha in rows],
                         metadata={"run_id": run.id, "dataset_id": run.dataset_id, "run_name": run.name,
                                   "continued_from": run.continued_from_id},
                         checkpoint=checkpoint)
    setup = TrainSetup(feature_dir=storage.feature_dir(run.dataset_id), backbone_dir=storage.backbone_dir,
                       threads=current_app.config["FEATURE_THREADS"],
                       image_cache_bytes=current_app.config["TRAIN_IMAGE_CACHE_MB"] * 2**20)
    return inputs, TrainOptions.from_dict(run.options), storage.work_dir(run_prefix(run.id)), setup


# --- finishing -----------------------------------------------------------------------------------

def finish_cancelled(run: TrainingRun, reporter: RunReporter) -> None:
    """running -> cancelled, keeping the curves and log up to the moment it stopped."""
    reporter.flush(_retry_budget())
    get_storage().discard_work(run_prefix(run.id))
    _finish(run, "cancelled", stored_line(N_("Training was cancelled.")))


def finish_failed(run: TrainingRun, exc: Exception) -> None:
    """running -> failed, with a plain sentence for the page (the traceback belongs in the worker log)."""
    db.session.rollback()
    get_storage().discard_work(run_prefix(run.id))
    detail = None if failure_is_plain(exc) else f"{type(exc).__name__}: {exc}"[:1000]
    _finish(run, "failed", failure_line(exc), error=failure_message(exc),
            values={"progress": {**(run.progress or {}), "error_detail": detail}} if detail else None)


def finish_succeeded(run: TrainingRun, result, out_dir) -> None:
    """running -> succeeded: the files written to out_dir are stored (put into the bucket, when there is
    one), then the engine's metrics, history, per-image validation and test results, threshold curve
    (validation) and artifact location; the log says which head quick mode chose and why."""
    storage = get_storage()
    storage.put_dir(run_prefix(run.id), out_dir)
    storage.discard_work(run_prefix(run.id))
    stored = _result_values(result, storage.ref(run_prefix(run.id)))
    choice = (result.extra or {}).get("head_choice")
    notes = [choice.get("reason_line") or choice["reason"]] if choice else ()
    _finish(run, "succeeded", _success_line(result), values=stored, notes=notes)


def failure_message(exc: Exception) -> str:
    """A plain sentence for the run page; details stay in the worker log."""
    from app.ml.errors import MLError

    if isinstance(exc, MLError):
        return exc.message
    if isinstance(exc, FileNotFoundError):
        return N_("An image of this dataset is missing from storage, so training could not read it.")
    if isinstance(exc, MemoryError):
        return N_("The worker ran out of memory. Try a smaller batch size or image size.")
    # The exception's text can name server internals (file paths, hosts): users get a plain sentence,
    # administrators the details on the run page (progress["error_detail"]) and in the worker log.
    return N_("Training stopped because of an unexpected problem on the server. Try again; if it happens "
              "again, tell an administrator (they can see the details on this page).")


def failure_line(exc: Exception) -> str | dict:
    """failure_message for the run's log: the ML library's words line when the error has one, so the run
    page says it in the reader's language (results.failure_text)."""
    from app.ml.errors import MLError

    return exc.line if isinstance(exc, MLError) and exc.line else failure_message(exc)


def failure_is_plain(exc: Exception) -> bool:
    """Whether failure_message(exc) already says everything (no details worth keeping for admins)."""
    from app.ml.errors import MLError

    return isinstance(exc, (MLError, FileNotFoundError, MemoryError))


def _success_line(result) -> dict:
    test = result.test_metrics or {}
    if test.get("count"):
        return stored_line(N_("Finished: correct on %(right)s of %(count)s test images."),
                           right=round(test["accuracy"] * test["count"]), count=test["count"])
    return stored_line(N_("Finished."))


VALIDATION_KEPT = ("count", "accuracy", "accuracy_ci95", "balanced_accuracy", "macro_f1")


def _result_values(result, artifact_dir: str) -> dict:
    """The run columns a succeeded result sets. The per-image validation and test predictions get their
    own (deferred) columns; the threshold curve is computed once, here, from the validation predictions
    only (a threshold picked on the test images would make the test score optimistic). run.metrics
    stays small: test metrics, and a few validation figures under "validation"."""
    from app.blueprints.training.thresholds import curve_grid

    metrics = dict(result.test_metrics or {})
    predictions = metrics.pop("predictions", None) or None
    val = dict(result.val_metrics or {})
    val_predictions = val.pop("predictions", None) or None
    wrong = metrics.get("misclassified") or []  # the most confident mistakes (the engine keeps a few hundred)
    count = sum(1 for p in predictions if p["true"] != p["predicted"]) if predictions else len(wrong)
    metrics.update({"misclassified": wrong[:GALLERY_LIMIT], "misclassified_count": count,
                    "best_epoch": result.best_epoch, "best_val_acc": result.best_val_acc,
                    "stopped_early": result.stopped_early, "stop_reason": result.stop_reason,
                    "stop_line": result.stop_line,
                    "start_epoch": result.start_epoch, "device": result.device,
                    "seconds": result.seconds, "artifacts": result.artifacts,
                    "embedding_stats": result.embedding_stats, "test_predictions_kept": bool(predictions),
                    "validation": {k: val.get(k) for k in VALIDATION_KEPT} if val else None,
                    "head_choice": (result.extra or {}).get("head_choice")})
    return {"metrics": metrics, "history": list(result.history), "artifact_dir": artifact_dir,
            "test_predictions": predictions, "val_predictions": val_predictions,
            "threshold_curve": curve_grid(val_predictions, split="val") if val_predictions else None}


def _finish(run: TrainingRun, status: str, message: str | dict, error: str | None = None,
            values: dict | None = None, notes: Sequence[str] = ()) -> None:
    """Set the final state (retrying a busy database: the work done must not be lost to a lock);
    `notes` are logged before the final message."""
    def write() -> None:
        for name, value in (values or {}).items():
            setattr(run, name, value)
        if status == "succeeded":
            run.progress = {**(run.progress or {}), "fraction": 1.0, "eta_seconds": 0, "phase": "done"}
        run.status, run.error = status, error
        run.finished_at = run.heartbeat_at = utcnow()
        for note in notes:
            append_log(run, note)
        append_log(run, message)
        db.session.commit()

    retry_write(write, _retry_budget(), f"{status} of run {run.id}")
    notify_webhooks("run.finished", run.id)


# --- reaper --------------------------------------------------------------------------------------

def _fail(run: TrainingRun, reason: str, *conditions) -> int:
    """Mark a run failed if it still is as the reaper saw it (`conditions` are checked in the same
    UPDATE, so a heartbeat written meanwhile wins). Returns 1 when it was failed."""
    done = db.session.execute(
        update(TrainingRun).where(TrainingRun.id == run.id, TrainingRun.status == run.status, *conditions)
        .values(status="failed", error=reason, finished_at=utcnow())
        .execution_options(synchronize_session="fetch")).rowcount
    if done:
        log.warning("train run=%s job=%s: -> failed (reaped)", run.id, run.job_id)
        append_log(run, reason)
        db.session.commit()  # before the webhooks' job can read the run
        notify_webhooks("run.finished", run.id)
    return done


def _stale(cutoff):
    return or_(TrainingRun.heartbeat_at < cutoff,
               and_(TrainingRun.heartbeat_at.is_(None),
                    or_(TrainingRun.started_at.is_(None), TrainingRun.started_at < cutoff)))


def reap_stale_runs(max_age_s: float = 60) -> int:
    """Fail runs whose worker is gone. Returns how many runs were marked failed.

    - running, and RQ says the job failed or was stopped: the worker gave up on it;
    - running with a database heartbeat older than max_age_s AND no Redis heartbeat: the worker died
      (a live worker whose database writes are delayed by a busy database keeps beating in Redis);
    - queued whose job vanished from Redis; queued that never got a job (ORPHAN_AFTER)."""
    cutoff = utcnow() - timedelta(seconds=max_age_s)
    reaped = 0
    for run in db.session.scalars(select(TrainingRun).where(TrainingRun.status == "running")).all():
        beat = run.heartbeat_at or run.started_at
        if job_status(run.job_id) in DEAD_JOB_STATUSES[1:]:
            reaped += _fail(run, DEAD_WORKER_REASON)
        elif (beat is None or beat < cutoff) and not is_beating(f"run-{run.id}"):
            reaped += _fail(run, DEAD_WORKER_REASON, _stale(cutoff))
    queued = db.session.scalars(select(TrainingRun).where(
        TrainingRun.status == "queued",
        # a run is committed just before its job is enqueued: give that a moment
        TrainingRun.created_at < utcnow() - timedelta(seconds=5))).all()
    for run in queued:
        if run.job_id is None:
            if run.created_at < utcnow() - ORPHAN_AFTER:
                reaped += _fail(run, NEVER_QUEUED_REASON, TrainingRun.job_id.is_(None))
        elif job_status(run.job_id) in DEAD_JOB_STATUSES:
            reaped += _fail(run, LOST_JOB_REASON, TrainingRun.job_id == run.job_id)
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
