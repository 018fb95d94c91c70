"""Label suggestions: pick a trained model, queue the job, follow and store its results.

The state lives in one JSON document per dataset, JobState("suggestions", dataset_id)
(the storage key suggestions/<dataset_id>.json, app.jobs.state):
{status: queued|running|done|failed, job_id, model_id, model_name, requested_by_id, created,
 finished, error, method, seconds, unreadable, progress: {done, total},
 suggestions: [{image_id, label, confidence, margin}]}.
The web request that queues a job replaces it; that job then changes it only while the document still
names its job id (a newer request wins). Every change is made under the JobState lock.
Reviewing and accepting the finished suggestions: review.py.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from app.access import shown_runs
from app.i18n import N_
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.jobs import DEAD_JOB_STATUSES, SUGGEST, JobState, enqueue, job_status, new_job_id
from app.models import Image, TrainingRun, User
from app.filestore import image_key, run_prefix
from app.storage import get_storage

log = logging.getLogger(__name__)

ENQUEUE_GRACE_S = 10  # the state file is written just before the job is queued
ACTIVE = ("queued", "running")
LOST_JOB = N_("The suggestion job stopped unexpectedly (the worker was restarted or ran out of memory). "
              "Try again.")  # stored English, shown translated (|tr)


class ModelGone(Exception):
    """The chosen model (or its files) disappeared between the request and the job."""


class _NotCurrent(Exception):
    """The stored state no longer belongs to this job: leave it as it is."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- the stored state ---------------------------------------------------------------------------

def read_state(dataset_id: int) -> dict | None:
    """The stored document as is (None when there is none or it is unreadable)."""
    return JobState("suggestions", dataset_id).read() or None


def _change(dataset_id: int, change: Callable[[dict], None]) -> dict | None:
    """Apply `change` under the lock; None (and nothing written) when it raises _NotCurrent."""
    try:
        return JobState("suggestions", dataset_id).update(change)
    except _NotCurrent:
        return None


def _update(dataset_id: int, job_id: str, **changes) -> dict | None:
    """Store `changes` if the state still belongs to job `job_id`; the new state, or None if replaced."""
    def change(state: dict) -> None:
        if state.get("job_id") != job_id:
            raise _NotCurrent
        state.update(changes)

    return _change(dataset_id, change)


def _job_alive(job_id: str | None) -> bool:
    return job_status(job_id) not in DEAD_JOB_STATUSES


def _lost(state: dict) -> bool:
    """A queued/running state whose RQ job is gone (past the moment between writing and queueing)."""
    if state.get("status") not in ACTIVE or _job_alive(state.get("job_id")):
        return False
    created = datetime.fromisoformat(state.get("created") or now_iso())
    return datetime.now(timezone.utc) - created > timedelta(seconds=ENQUEUE_GRACE_S)


def load_state(dataset_id: int) -> dict | None:
    """The suggestion state, with a queued/running job whose RQ job is gone reported as failed."""
    state = read_state(dataset_id)
    if state and _lost(state):
        def fail(current: dict) -> None:
            if current.get("job_id") != state.get("job_id") or current.get("status") not in ACTIVE:
                raise _NotCurrent
            current.update(status="failed", error=LOST_JOB, finished=now_iso())

        state = _change(dataset_id, fail) or read_state(dataset_id)
    return state


# --- models and queueing ------------------------------------------------------------------------

def usable_models(dataset_id: int) -> list[TrainingRun]:
    """Succeeded runs of this dataset that still have their files, newest first."""
    runs = db.session.scalars(select(TrainingRun).where(
        TrainingRun.dataset_id == dataset_id, TrainingRun.status == "succeeded",
        TrainingRun.artifact_dir.is_not(None), shown_runs()).order_by(TrainingRun.id.desc()))
    return [r for r in runs if r.artifact_dir]


def model_score(run: TrainingRun) -> float:
    """How good a model looks next to the others: the low end of the 95% interval of its validation
    accuracy (of its test accuracy when it kept no validation images), so that a score measured on a
    handful of images counts for little. -1 when it has neither."""
    metrics = run.metrics or {}
    for part in (metrics.get("validation") or {}, metrics):
        interval = part.get("accuracy_ci95")
        if interval:
            return float(interval[0])
    return -1.0


def best_model(models: list[TrainingRun], default_model_id: int | None = None) -> TrainingRun | None:
    """The model to offer first: the user's default model when it is one of `models`, else the best
    scored one (the newest of equals, `models` being newest first)."""
    for run in models:
        if run.id == default_model_id:
            return run
    return max(models, key=model_score) if models else None


def choose_model(dataset_id: int, model_id: int | None, default_model_id: int | None = None) -> TrainingRun:
    """The requested model of this dataset, or the best usable one (best_model) when none is given."""
    models = usable_models(dataset_id)
    if not models:
        raise ValidationError(_("Train a model on this dataset first; suggestions come from a trained model."))
    if model_id is None:
        return best_model(models, default_model_id)
    for run in models:
        if run.id == model_id:
            return run
    raise NotFound(_("This model does not exist for this dataset, or it has not finished training."))


def unlabeled_images(dataset_id: int) -> list[tuple[int, str]]:
    """(image id, sha256) of the dataset's unlabeled images, oldest first."""
    rows = db.session.execute(select(Image.id, Image.sha256).where(
        Image.dataset_id == dataset_id, Image.label_id.is_(None)).order_by(Image.id))
    return [(int(i), str(s)) for i, s in rows]


def request_suggestions(dataset_id: int, model_id: int | None, user_id: int) -> dict:
    """Queue a suggestion job for the dataset's unlabeled images; returns the new state."""
    user = db.session.get(User, user_id)
    run = choose_model(dataset_id, model_id, user.default_model_id if user else None)
    current = load_state(dataset_id)
    if current and current.get("status") in ACTIVE:
        raise Conflict(_("Suggestions are already being computed for this dataset. Wait for them to finish."))
    if not db.session.scalar(select(func.count(Image.id)).where(
            Image.dataset_id == dataset_id, Image.label_id.is_(None))):
        raise ValidationError(_("Every image of this dataset already has a class; there is nothing to suggest."))
    job_id = new_job_id(SUGGEST, dataset_id)
    state = {"status": "queued", "job_id": job_id, "model_id": run.id, "model_name": run.name,
             "requested_by_id": user_id, "created": now_iso(), "finished": None, "error": None,
             "suggestions": []}
    JobState("suggestions", dataset_id).replace(state)
    enqueue(SUGGEST, dataset_id, run.id, job_id, job_id=job_id,
            description=f"suggest labels for dataset {dataset_id}")
    return state


# --- the job's side -----------------------------------------------------------------------------

def claim(dataset_id: int, job_id: str) -> bool:
    """Mark the state 'running' for this job; False (nothing changed) when a newer request replaced it."""
    if _update(dataset_id, job_id, status="running") is None:
        log.info("suggest dataset=%s job=%s: replaced by a newer request, skipping", dataset_id, job_id)
        return False
    return True


def _progress_writer(dataset_id: int, job_id: str):
    """on_progress callback: record done/total in the state, at most once a second."""
    last = [0.0]

    def write(done: int, total: int) -> None:
        if time.monotonic() - last[0] >= 1.0 or done == total:
            last[0] = time.monotonic()
            _update(dataset_id, job_id, progress={"done": done, "total": total})

    return write


def score_unlabeled(dataset_id: int, model_id: int, job_id: str):
    """Run model `model_id` over the unlabeled images: (app.ml.suggest scores, their image ids)."""
    from app.ml.artifacts import CHECKPOINT
    from app.ml.embeddings import FeatureSetup, ImageFiles
    from app.ml.suggest import score_files  # torch: only in the job process

    run = db.session.get(TrainingRun, model_id)
    if run is None or run.deleting or not run.artifact_dir:
        raise ModelGone("The model was deleted before its suggestions were computed.")
    images = unlabeled_images(dataset_id)
    db.session.commit()  # end the read transaction: scoring can take a while
    storage = get_storage()
    files = ImageFiles([storage.ref(image_key(sha)) for _, sha in images], [sha for _, sha in images],
                       [image_id for image_id, _ in images])
    setup = FeatureSetup(dataset_dir=storage.feature_dir(dataset_id), backbone_dir=storage.backbone_dir,
                         threads=current_app.config["FEATURE_THREADS"])
    scores = score_files(storage.local_dir(run_prefix(run.id), skip=(CHECKPOINT,)), files, features=setup,
                         max_pixels=current_app.config["MAX_IMAGE_PIXELS"],
                         on_progress=_progress_writer(dataset_id, job_id))
    return scores, [image_id for image_id, _ in images]


def _rows(scores, image_ids: list[int]) -> list[dict]:
    from app.ml.suggest import rank

    best, confidence, margin = rank(scores.probs)
    return [{"image_id": image_ids[i], "label": scores.classes[int(b)], "confidence": round(float(c), 4),
             "margin": round(float(m), 6)} for i, b, c, m in zip(scores.ok, best, confidence, margin)]


def store_suggestions(dataset_id: int, job_id: str, scores, image_ids: list[int], seconds: float) -> int:
    """Store the finished job's suggestions (if it is still the current one); how many there are."""
    rows = _rows(scores, image_ids)
    _update(dataset_id, job_id, finished=now_iso(), status="done", error=None, suggestions=rows,
            method=scores.method, unreadable=len(scores.unreadable), seconds=seconds)
    return len(rows)


def record_failure(dataset_id: int, job_id: str, exc: Exception) -> None:
    """Mark the job failed (if it is still the current one), saying why in plain words."""
    _update(dataset_id, job_id, finished=now_iso(), status="failed", error=_plain(exc))


def _plain(exc: Exception) -> str | dict:
    from app.ml.errors import MLError

    if isinstance(exc, ModelGone):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return N_("The model's files or an image are missing from storage.")
    if isinstance(exc, MLError):
        return exc.line or exc.message
    return N_("Suggestions stopped because of an unexpected problem on the server. Try again; if it happens "
              "again, tell an administrator (the worker's log has the details).")
