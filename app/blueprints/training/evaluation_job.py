"""The job's side of an evaluation: claim it, page through the images by key (PAGE at a time, each read in
its own short transaction), score them with app.ml.evaluate, write progress at most once a second, stop
when cancelled, store the results. Memory stays the same at 200,000 images: one page of rows, one page of
probabilities, the confusion matrix and the kept mistakes."""
from __future__ import annotations

import logging
import time

import numpy as np

from flask import current_app
from sqlalchemy import select, update

from app.blueprints.training.evaluations import Plan, learned_query, plan_for
from app.extensions import db
from app.filestore import image_key, run_prefix
from app.i18n import N_, stored_line
from app.models import Evaluation, Image, TrainingRun, utcnow
from app.storage import get_storage

log = logging.getLogger(__name__)

PAGE = 2048               # images read from the database and scored per page
PROGRESS_EVERY_S = 1.0    # progress written (and the cancel flag read) at most this often
MODEL_GONE = N_("The model was deleted, or lost its files, before it could be evaluated.")
UNEXPECTED = N_("The evaluation stopped because of an unexpected problem on the server. Try again; if it happens "
                "again, tell an administrator (the worker's log has the details).")


class ModelGone(Exception):
    """The model (or its files) disappeared between the request and the job."""


class Stopped(Exception):
    """Cancelled by its user, or its row is gone (the model or the dataset was deleted meanwhile)."""


def claim(evaluation_id: int, job_id: str | None) -> Evaluation | None:
    """queued -> running for this job; None (nothing changed) when it was cancelled or is not this job's."""
    claimed = db.session.execute(update(Evaluation).where(
        Evaluation.id == evaluation_id, Evaluation.status == "queued", Evaluation.cancel_requested.is_(False),
        *([Evaluation.job_id == job_id] if job_id else [])).values(status="running", started_at=utcnow())).rowcount
    db.session.commit()
    return db.session.get(Evaluation, evaluation_id) if claimed else None


class Progress:
    """on_batch(done): writes {done, total} and reads the cancel flag, at most every PROGRESS_EVERY_S."""

    def __init__(self, evaluation_id: int, total: int):
        self.evaluation_id, self.total, self.last = evaluation_id, total, 0.0

    def __call__(self, done: int) -> None:
        if time.monotonic() - self.last < PROGRESS_EVERY_S:
            return
        self.last = time.monotonic()
        progress = {"done": min(done, self.total), "total": self.total}
        db.session.execute(update(Evaluation).where(Evaluation.id == self.evaluation_id).values(progress=progress))
        db.session.commit()
        cancel = db.session.scalar(select(Evaluation.cancel_requested).where(Evaluation.id == self.evaluation_id))
        db.session.commit()  # end the read transaction: the next read sees the web's latest commit
        if cancel is None or cancel:
            raise Stopped


def learned_digests(run_id: int) -> np.ndarray:
    """The sha256 digests (32 bytes each) of the run's training and validation images, sorted: read once
    per job (6.4 MB at 200,000 samples) so each page is checked against them by binary search."""
    digests = digests_of(db.session.scalars(learned_query(run_id)).all())
    db.session.commit()
    return np.unique(digests)


def digests_of(shas) -> np.ndarray:
    """Hex sha256 strings -> a numpy array of their 32-byte digests (dtype S32), in one pass."""
    return np.frombuffer(bytes.fromhex("".join(shas)), dtype="S32")


def _within(digests: np.ndarray, sorted_digests: np.ndarray) -> np.ndarray:
    """bool [n]: which digests are in sorted_digests (a binary search each, the sorted list is kept)."""
    if not len(sorted_digests):
        return np.zeros(len(digests), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_digests, digests), len(sorted_digests) - 1)
    return sorted_digests[at] == digests


def pages(evaluation: Evaluation, plan: Plan):
    """(ImageFiles, true class indices) per page of images to evaluate, in id order (keyset paging over
    PAGE rows of the classes the model knows; the learned ones dropped with the digests read once, not by a
    condition each page's statement would rebuild the run's whole list for)."""
    from app.ml.embeddings import ImageFiles

    storage, after, learned = get_storage(), 0, learned_digests(evaluation.run_id)
    query = select(Image.id, Image.sha256, Image.label_id).where(
        Image.dataset_id == evaluation.dataset_id, Image.label_id.in_(list(plan.mapping))).order_by(Image.id).limit(PAGE)
    while True:
        rows = db.session.execute(query.where(Image.id > after)).all()
        db.session.commit()  # no transaction stays open while the page is scored
        if not rows:
            return
        after = rows[-1][0]
        seen = _within(digests_of([sha for _, sha, _ in rows]), learned)
        rows = [r for r, was_learned in zip(rows, seen.tolist()) if not was_learned]
        if rows:
            files = ImageFiles([storage.ref(image_key(sha)) for _, sha, _ in rows], [sha for _, sha, _ in rows],
                               [image_id for image_id, _, _ in rows])
            yield files, [plan.mapping[label_id] for _, _, label_id in rows]


def run_evaluation(evaluation: Evaluation) -> dict:
    """Evaluate a claimed evaluation's model on its dataset and store the results (see the module doc)."""
    from app.ml.artifacts import CHECKPOINT
    from app.ml.embeddings import FeatureSetup
    from app.ml.evaluate import Scorer, Tally, evaluate_pages  # torch: only in the job process

    run = db.session.get(TrainingRun, evaluation.run_id)
    if run is None or run.deleting or not run.artifact_dir:
        raise ModelGone(MODEL_GONE)
    plan = plan_for(run, evaluation.dataset_id)  # the dataset as it is now, not as it was when queued
    total = plan.counts["evaluated"]
    evaluation.counts, evaluation.progress = plan.counts, {"done": 0, "total": total}
    db.session.commit()
    storage = get_storage()
    setup = FeatureSetup(dataset_dir=storage.feature_dir(evaluation.dataset_id), backbone_dir=storage.backbone_dir,
                         threads=current_app.config["FEATURE_THREADS"])
    scorer = Scorer.open(storage.local_dir(run_prefix(run.id), skip=(CHECKPOINT,)), setup)
    tally = evaluate_pages(scorer, pages(evaluation, plan) if total else [], Tally(scorer.classes),
                           Progress(evaluation.id, total))
    report = tally.report()
    counts = {**plan.counts, "evaluated": tally.count, "unreadable": tally.unreadable,
              "accuracy": report["accuracy"] if report["count"] else None}  # for lists: metrics is deferred
    stored = db.session.execute(update(Evaluation).where(Evaluation.id == evaluation.id,
                                                         Evaluation.status == "running").values(
        status="succeeded", metrics=report, misclassified=tally.mistakes(), counts=counts,
        progress={"done": total, "total": total}, finished_at=utcnow())).rowcount
    db.session.commit()
    log.info("evaluation=%s: %s of %s right (%s, %s unreadable)", evaluation.id, report["correct"], report["count"],
             scorer.method, tally.unreadable)
    return {"status": "succeeded" if stored else "gone", "count": report["count"], "accuracy": report["accuracy"]}


def finish_stopped(evaluation_id: int) -> str:
    """After Stopped: 'cancelled' when the row is still there, else 'gone'."""
    db.session.rollback()
    done = db.session.execute(update(Evaluation).where(Evaluation.id == evaluation_id).values(
        status="cancelled", finished_at=utcnow())).rowcount
    db.session.commit()
    return "cancelled" if done else "gone"


def record_failure(evaluation_id: int, exc: Exception) -> None:
    """Mark it failed, saying why in a line the page shows in the reader's language (the ML library's own
    reason, else a plain sentence: the exception's text can name server internals; the log has it)."""
    from app.ml.errors import MLError

    db.session.rollback()
    if isinstance(exc, MLError):
        error = exc.line or {"message": exc.message}
    else:
        error = stored_line(MODEL_GONE if isinstance(exc, (ModelGone, FileNotFoundError)) else UNEXPECTED)
    db.session.execute(update(Evaluation).where(Evaluation.id == evaluation_id).values(
        status="failed", error=error, finished_at=utcnow()))
    db.session.commit()
