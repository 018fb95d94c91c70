"""The RQ task behind "Suggest labels": run a trained model over a dataset's unlabeled images and
store, per image, the suggested class, its probability and the margin to the runner-up."""
from __future__ import annotations

import logging
import time

from flask import current_app

from app.blueprints.datasets.suggestions import services as store
from app.extensions import db
from app.models import TrainingRun
from app.storage import get_storage
from app.jobs.context import with_app_context

log = logging.getLogger(__name__)


class ModelGone(Exception):
    """The chosen model (or its files) disappeared between the request and the job."""


@with_app_context
def suggest_labels(dataset_id: int, model_id: int, job_id: str) -> dict:
    """RQ task: score the unlabeled images with model `model_id`; re-raises failures for RQ."""
    from app.ml.suggest import score_files

    if not _still_current(dataset_id, job_id, "running"):
        return {"status": "skipped"}
    started = time.perf_counter()
    try:
        run = db.session.get(TrainingRun, model_id)
        if run is None or not run.artifact_dir:
            raise ModelGone("The model was deleted before its suggestions were computed.")
        images = store.unlabeled_images(dataset_id)
        db.session.commit()  # end the read transaction: scoring can take a while
        storage = get_storage()
        scores = score_files(run.artifact_dir, [str(storage.image_path(sha)) for _, sha in images],
                             [sha for _, sha in images], cache_dir=storage.embedding_cache_dir,
                             max_pixels=current_app.config["MAX_IMAGE_PIXELS"],
                             on_progress=_progress_writer(dataset_id, job_id))
    except Exception as exc:
        log.exception("suggest dataset=%s model=%s job=%s failed", dataset_id, model_id, job_id)
        _finish(dataset_id, job_id, status="failed", error=_plain(exc))
        raise
    rows = _rows(scores, [image_id for image_id, _ in images])
    _finish(dataset_id, job_id, status="done", error=None, suggestions=rows, method=scores.method,
            unreadable=len(scores.unreadable), seconds=round(time.perf_counter() - started, 2))
    log.info("suggest dataset=%s model=%s: %d suggestions (%s)", dataset_id, model_id, len(rows), scores.method)
    return {"status": "done", "count": len(rows)}


def _rows(scores, image_ids: list[int]) -> list[dict]:
    from app.ml.suggest import rank

    best, confidence, margin = rank(scores.probs)
    return [{"image_id": image_ids[i], "label": scores.classes[int(b)], "confidence": round(float(c), 4),
             "margin": round(float(m), 6)} for i, b, c, m in zip(scores.ok, best, confidence, margin)]


def _still_current(dataset_id: int, job_id: str, status: str) -> bool:
    """Mark the state `status` unless a newer request replaced this job (then do nothing)."""
    state = store.read_state(dataset_id)
    if not state or state.get("job_id") != job_id:
        log.info("suggest dataset=%s job=%s: replaced by a newer request, skipping", dataset_id, job_id)
        return False
    _update(dataset_id, job_id, status=status)
    return True


def _progress_writer(dataset_id: int, job_id: str):
    """on_progress callback: record done/total in the state file, at most once a second."""
    last = [0.0]

    def write(done: int, total: int) -> None:
        if time.monotonic() - last[0] >= 1.0 or done == total:
            last[0] = time.monotonic()
            _update(dataset_id, job_id, progress={"done": done, "total": total})

    return write


def _update(dataset_id: int, job_id: str, **changes) -> None:
    state = store.read_state(dataset_id)
    if state and state.get("job_id") == job_id:
        state.update(changes)
        store.save_state(dataset_id, state)


def _finish(dataset_id: int, job_id: str, **changes) -> None:
    _update(dataset_id, job_id, finished=store.now_iso(), **changes)


def _plain(exc: Exception) -> str:
    if isinstance(exc, ModelGone):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return "The model's files or an image are missing from storage."
    return f"Suggestions failed because of an unexpected error ({type(exc).__name__})."
