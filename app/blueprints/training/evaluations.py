"""Testing a trained model on another dataset's labeled images (or its own dataset's images added since it
was trained), without training anything: who may, which images count, queueing the job, reading results.

Classes are matched by name ignoring case, as everywhere else (datasets.classes.find_label). Left out, and
counted: unlabeled images, images of classes the model does not know, and images the model was trained or
validated on (by content, in any dataset: a copy of a training image says nothing about new pictures).
The job's side (paging through the images, progress, cancel): evaluation_job.py.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select, update

from app.access import get_dataset_for, get_run_for, visible_datasets_query
from app.blueprints.webhooks.services import notify as notify_webhooks
from app.errors import Conflict, DomainError, NotFound, ValidationError
from app.extensions import db
from app.i18n import N_, stored_line
from app.jobs import EVALUATE, DEAD_JOB_STATUSES, enqueue, is_beating, job_status, new_job_id, remove_job
from app.models import Dataset, Evaluation, Image, Label, RunSample, TrainingRun, utcnow

log = logging.getLogger(__name__)

LEARNED_PARTS = ("train", "val")  # what the model learned from, or was chosen on
UNKNOWN_NAMES_KEPT = 20           # class names the model does not know, listed on the results page
HEARTBEAT_TTL_S = 60
ENQUEUE_GRACE_S = 10              # an evaluation is committed just before its job is queued
LIST_LIMIT = 20                   # past evaluations shown on the model's page
# The start request counts the learned images exactly when that reads at most this many of the run's
# samples (~20-60 ms on SQLite); beyond, while some images are surely left, the job counts them.
COUNTED_AT_START = 20_000
LOST_JOB = N_("The evaluation stopped unexpectedly (the worker was restarted or ran out of memory, or the queue "
              "lost its job). Start it again.")


def heartbeat_name(evaluation_id: int) -> str:
    return f"evaluation-{evaluation_id}"


# --- which images count ---------------------------------------------------------------------------

@dataclass
class Plan:
    """Dataset label id -> the model's class index, and how many images count or are left out (and why).
    exact False: "learned" was not counted yet and "evaluated" is the most that can be tested (see counted)."""

    mapping: dict[int, int]
    counts: dict
    exact: bool = True


def class_mapping(run: TrainingRun, dataset_id: int) -> tuple[dict[int, int], list[str]]:
    """({label id: model class index} for the dataset's classes the model knows, names of the others)."""
    known = {name.lower(): index for index, name in enumerate(run.classes or [])}
    mapping, unknown = {}, []
    for label_id, name in db.session.execute(select(Label.id, Label.name).where(Label.dataset_id == dataset_id)
                                             .order_by(Label.position, Label.id)):
        if name.lower() in known:
            mapping[label_id] = known[name.lower()]
        else:
            unknown.append(name)
    return mapping, unknown


def learned_query(run_id: int):
    """The content (sha256) of the run's training and validation images."""
    return select(RunSample.sha256).where(RunSample.run_id == run_id, RunSample.part.in_(LEARNED_PARTS))


def learned_count(run_id: int, dataset_id: int, label_ids: list[int]) -> int:
    """How many of the dataset's images in `label_ids` the run learned from (same content, in any dataset).
    Joined from the run's learned samples into the images' (dataset_id, sha256) unique index: one probe per
    sample, on SQLite ~1-3 us each (0.08-0.4 s at 170,000 samples, against 0.4-1.5 s for sha256 NOT IN the
    samples, which compares every image). run_samples has no index by content, so no query here can do less
    than read the run's samples (see COUNTED_AT_START). A run's samples come from one dataset, which holds
    each content once: the join counts each image once."""
    return db.session.scalar(select(func.count()).select_from(RunSample).join(
        Image, (Image.dataset_id == dataset_id) & (Image.sha256 == RunSample.sha256)).where(
        RunSample.run_id == run_id, RunSample.part.in_(LEARNED_PARTS), Image.label_id.in_(label_ids)))


def counted(counts: dict) -> bool:
    """Whether stored counts are exact: the learned images were counted (by the start request or the job).
    Until then "evaluated" is the images matched, the most that can be tested, and "learned" is absent."""
    return "learned" in counts


def _count_later(run_id: int, matched: int) -> bool:
    """True when the start request may leave counting the learned images to the job: counting would read
    more than COUNTED_AT_START samples, and some images are surely left to evaluate since more match than
    the run has learned samples (a dataset holds each content once). Cheapest bound first."""
    everything = db.session.scalar(select(func.count()).select_from(RunSample).where(RunSample.run_id == run_id))
    if everything <= COUNTED_AT_START:
        return False
    if matched > everything:
        return True
    learned = db.session.scalar(learned_query(run_id).with_only_columns(func.count()))
    return learned > COUNTED_AT_START and matched > learned


def plan_for(run: TrainingRun, dataset_id: int, exact: bool = True) -> Plan:
    """The class mapping and the counts, from one grouped count and one count of learned images. exact False
    (the start request): that count is skipped when _count_later allows (the counts then say "up to")."""
    mapping, unknown = class_mapping(run, dataset_id)
    per_label = dict(db.session.execute(select(Image.label_id, func.count()).where(Image.dataset_id == dataset_id)
                                        .group_by(Image.label_id)).all())
    matched = sum(n for label_id, n in per_label.items() if label_id in mapping)
    counts = {"evaluated": matched, "unlabeled": per_label.get(None, 0),
              "unknown_class": sum(n for label_id, n in per_label.items() if label_id is not None
                                   and label_id not in mapping),
              "unreadable": 0, "unknown_classes": unknown[:UNKNOWN_NAMES_KEPT]}
    if not exact and matched and _count_later(run.id, matched):
        return Plan(mapping, counts, exact=False)
    learned = learned_count(run.id, dataset_id, list(mapping)) if matched else 0
    return Plan(mapping, {**counts, "evaluated": matched - learned, "learned": learned})


# --- starting one ----------------------------------------------------------------------------------

def evaluable_datasets(user) -> list[Dataset]:
    """Datasets the user can evaluate a model on (their own and those shared with them), by name."""
    return list(db.session.scalars(visible_datasets_query(user).order_by(func.lower(Dataset.name), Dataset.id)))


def request_evaluation(user, run_id: int, dataset_id: int | None) -> Evaluation:
    """Queue an evaluation of model `run_id` on dataset `dataset_id` (view access to both); refused at once,
    nothing stored, when no image of the dataset can be evaluated (422, saying why)."""
    run = get_run_for(user, run_id)
    if dataset_id is None:
        raise ValidationError(_("Pick the dataset to test the model on."))
    if run.status != "succeeded" or not run.artifact_dir:
        raise Conflict(_("This model has not finished training, so it cannot be evaluated yet."))
    dataset = get_dataset_for(user, dataset_id)
    plan = plan_for(run, dataset.id, exact=False)  # exact, unless counting would be slow (the job counts)
    _refuse_empty(run, dataset, plan)
    evaluation = Evaluation(run_id=run.id, dataset_id=dataset.id, created_by_id=user.id, status="queued",
                            counts=plan.counts, progress={"done": 0, "total": plan.counts["evaluated"]})
    db.session.add(evaluation)
    db.session.flush()
    evaluation.job_id = new_job_id(EVALUATE, evaluation.id)
    db.session.commit()
    try:
        enqueue(EVALUATE, evaluation.id, job_id=evaluation.job_id,
                description=f"evaluate model {run.id} on dataset {dataset.id}")
    except Exception:
        log.exception("could not enqueue evaluation %s", evaluation.id)
        db.session.delete(evaluation)
        db.session.commit()
        raise DomainError(_("The job queue is not reachable right now. Try again in a minute."), 503) from None
    log.info("evaluation=%s model=%s dataset=%s: queued (%s images)", evaluation.id, run.id, dataset.id,
             plan.counts["evaluated"])
    return evaluation


def _refuse_empty(run: TrainingRun, dataset: Dataset, plan: Plan) -> None:
    if not plan.mapping:
        raise ValidationError(_("None of the classes of “%(dataset)s” is a class this model knows (%(classes)s). "
                                "Classes are matched by name, ignoring capitals: rename a class on the "
                                "dataset's Classes page to match, or pick another dataset.",
                                dataset=dataset.name, classes=", ".join(run.classes or [])))
    if plan.counts["evaluated"] == 0 and plan.counts.get("learned"):
        raise ValidationError(_("Every labeled image of “%(dataset)s” in a class this model knows was used to "
                                "train it, so testing on them would say nothing new. Add and label new images "
                                "first.", dataset=dataset.name))
    if plan.counts["evaluated"] == 0:
        raise ValidationError(_("“%(dataset)s” has no labeled images in the classes this model knows. Label some "
                                "images first.", dataset=dataset.name))


def cancel_evaluation(user, run_id: int, evaluation_id: int) -> Evaluation:
    """Stop an evaluation: a queued one at once, a running one after its current batch. Whoever started it
    may, and the editors of the model's dataset (as for a training run)."""
    evaluation = get_evaluation_for(user, run_id, evaluation_id)
    if evaluation.created_by_id != user.id:
        get_run_for(user, run_id, need="editor")  # NotAllowed (403) for a viewer
    if evaluation.finished:
        return evaluation
    if evaluation.status == "queued":
        remove_job(evaluation.job_id)
        _finish(evaluation.id, "cancelled", only_if=("queued",))
    else:
        db.session.execute(update(Evaluation).where(Evaluation.id == evaluation.id).values(cancel_requested=True))
        db.session.commit()
    db.session.refresh(evaluation)
    return evaluation


def _finish(evaluation_id: int, status: str, only_if: tuple[str, ...], error: dict | None = None) -> bool:
    """End an evaluation its job will not end (cancelled while queued, or its job lost), if it still is in
    one of `only_if`; the webhooks hear of it as they do when the job ends it."""
    done = db.session.execute(update(Evaluation).where(Evaluation.id == evaluation_id,
                                                       Evaluation.status.in_(only_if))
                              .values(status=status, error=error, finished_at=utcnow())).rowcount
    db.session.commit()
    if done:
        notify_webhooks("evaluation.finished", evaluation_id)
    return bool(done)


# --- reading them ----------------------------------------------------------------------------------

def get_evaluation_for(user, run_id: int, evaluation_id: int) -> Evaluation:
    """The evaluation, for whoever can view both the model's dataset and the evaluated one (else 404)."""
    run = get_run_for(user, run_id)
    evaluation = db.session.get(Evaluation, evaluation_id)
    if evaluation is None or evaluation.run_id != run.id:
        raise NotFound(_("This evaluation does not exist, or you do not have access to it."))
    try:
        get_dataset_for(user, evaluation.dataset_id)
    except NotFound:
        raise NotFound(_("This evaluation does not exist, or you do not have access to it.")) from None
    return notice_lost(evaluation)


def notice_lost(evaluation: Evaluation) -> Evaluation:
    """An evaluation whose job died (worker killed, queue lost) is marked failed when someone looks."""
    if evaluation.finished or utcnow() - evaluation.created_at < timedelta(seconds=ENQUEUE_GRACE_S):
        return evaluation
    if evaluation.status == "queued":
        lost = job_status(evaluation.job_id) in DEAD_JOB_STATUSES
    else:
        started = evaluation.started_at or evaluation.created_at
        lost = utcnow() - started > timedelta(seconds=HEARTBEAT_TTL_S) and not is_beating(
            heartbeat_name(evaluation.id))
    if lost and _finish(evaluation.id, "failed", (evaluation.status,), stored_line(LOST_JOB)):
        db.session.refresh(evaluation)
    return evaluation


def evaluations_of(user, run: TrainingRun) -> list[Evaluation]:
    """The model's latest evaluations on datasets the user can view, newest first."""
    visible = visible_datasets_query(user).with_only_columns(Dataset.id)
    return list(db.session.scalars(select(Evaluation).where(Evaluation.run_id == run.id,
                                                            Evaluation.dataset_id.in_(visible))
                                   .order_by(Evaluation.id.desc()).limit(LIST_LIMIT)))


def panel_context(user, run: TrainingRun) -> dict:
    """What the model page's "Evaluate on a dataset" card shows."""
    if run.status != "succeeded" or run.deleting:
        return {"evaluations": [], "eval_datasets": []}
    return {"evaluations": evaluations_of(user, run), "eval_datasets": evaluable_datasets(user)}
