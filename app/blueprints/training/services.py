"""Training runs: start (with a frozen dataset snapshot), cancel, retry, delete, list, compare."""
from __future__ import annotations

import logging
import shutil
from typing import Any

from sqlalchemy import func, select, update

from app.access import get_dataset_for, get_run_for, visible_datasets_query
from app.blueprints.training import lifecycle
from app.errors import Conflict, DomainError, NotFound, ValidationError
from app.extensions import db
from app.jobs import TRAIN, enqueue, new_job_id, remove_job
from app.ml.artifacts import DOWNLOADS
from app.models import Dataset, Image, Label, TrainingRun, User, utcnow
from app.storage import get_storage

log = logging.getLogger(__name__)


# --- dataset facts shown on the form -----------------------------------------------------------

def label_counts(dataset_id: int) -> dict[str, int]:
    """Labelled images per class name, in the dataset's class order (classes with 0 included)."""
    labels = db.session.scalars(
        select(Label).where(Label.dataset_id == dataset_id).order_by(Label.position, Label.id)).all()
    counts = dict(db.session.execute(
        select(Image.label_id, func.count()).where(Image.dataset_id == dataset_id, Image.label_id.is_not(None))
        .group_by(Image.label_id)).all())
    return {label.name: int(counts.get(label.id, 0)) for label in labels}


def dataset_for_training(user: User, dataset_id: int) -> Dataset:
    """Anyone who can see a dataset may train on it (training never changes the dataset)."""
    return get_dataset_for(user, dataset_id, need="viewer")


# --- starting a run ----------------------------------------------------------------------------

def _parse_options(architecture: str, mode: str, values: dict[str, Any]):
    from app.ml.errors import ArchitectureUnavailable, InvalidOptions, UnknownArchitecture
    from app.ml.networks import get_architecture
    from app.ml.options import TrainOptions

    try:
        get_architecture(architecture)
        return TrainOptions.from_dict({**values, "architecture": architecture, "mode": mode})
    except ArchitectureUnavailable as exc:
        raise ValidationError(f"This network cannot be used right now: {exc.reason}.") from None
    except (InvalidOptions, UnknownArchitecture) as exc:
        raise ValidationError(exc.message) from None


def build_snapshot(dataset_id: int, options) -> dict:
    """Classes, labelled samples [[image_id, class_index, sha256], ...] and the frozen split.

    Classes without any labelled image are left out: a model cannot learn a class it never saw.
    Raises ValidationError with every problem when the dataset cannot train with these fractions.
    """
    from app.ml.data import check_trainable, stratified_split

    counts = label_counts(dataset_id)
    problems = check_trainable(counts, options.val_fraction, options.test_fraction)
    if problems:
        raise ValidationError("This dataset cannot be trained yet. " + " ".join(problems))
    labels = db.session.scalars(
        select(Label).where(Label.dataset_id == dataset_id).order_by(Label.position, Label.id)).all()
    classes = [label.name for label in labels if counts[label.name] > 0]
    index_of = {label.id: classes.index(label.name) for label in labels if counts[label.name] > 0}
    rows = db.session.execute(
        select(Image.id, Image.label_id, Image.sha256)
        .where(Image.dataset_id == dataset_id, Image.label_id.is_not(None)).order_by(Image.id)).all()
    samples = [[image_id, index_of[label_id], sha] for image_id, label_id, sha in rows]
    split = stratified_split([s[1] for s in samples], options.val_fraction, options.test_fraction, options.seed)
    return {"classes": classes, "samples": samples, "split": split, "taken_at": utcnow().isoformat() + "Z"}


def start_run(user: User, dataset_id: int, name: str, architecture: str, mode: str,
              values: dict[str, Any]) -> TrainingRun:
    """Validate, freeze the snapshot, create the run and queue its job. Nothing is left on failure."""
    dataset = dataset_for_training(user, dataset_id)
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the model a name.")
    options = _parse_options(architecture, mode, values)
    snapshot = build_snapshot(dataset.id, options)
    run = TrainingRun(dataset_id=dataset.id, created_by_id=user.id, name=name[:120],
                      architecture=options.architecture, mode=options.mode, options=options.to_dict(),
                      snapshot=snapshot, classes=snapshot["classes"], status="queued")
    return _queue(run, f"Queued by {user.username}: {len(snapshot['samples'])} images, "
                       f"{len(snapshot['classes'])} classes.")


def _queue(run: TrainingRun, message: str) -> TrainingRun:
    lifecycle.append_log(run, message)
    db.session.add(run)
    db.session.flush()
    run.job_id = new_job_id(TRAIN, run.id)
    db.session.commit()
    try:
        enqueue(TRAIN, run.id, job_id=run.job_id, description=f"train run {run.id}")
    except Exception:
        log.exception("could not enqueue run %s", run.id)
        db.session.delete(run)
        db.session.commit()
        raise DomainError("The training queue is not reachable right now. Try again in a minute.", 503)
    log.info("train run=%s job=%s: created -> queued", run.id, run.job_id)
    return run


def retry_run(user: User, run_id: int) -> TrainingRun:
    """A new run with the same settings and the same frozen snapshot as a failed/cancelled one."""
    old = get_run_for(user, run_id, need="viewer")
    if old.status not in ("failed", "cancelled"):
        raise Conflict("Only failed or cancelled runs can be retried.")
    _parse_options(old.architecture, old.mode, {k: v for k, v in old.options.items()
                                                if k not in ("architecture", "mode")})
    name = old.name if old.name.endswith("(retry)") else f"{old.name} (retry)"
    run = TrainingRun(dataset_id=old.dataset_id, created_by_id=user.id, name=name[:120],
                      architecture=old.architecture, mode=old.mode, options=dict(old.options),
                      snapshot=old.snapshot, classes=list(old.classes), status="queued")
    return _queue(run, f"Retry of run #{old.id}, queued by {user.username}.")


# --- cancel / delete -----------------------------------------------------------------------------

def cancel_run(user: User, run_id: int) -> TrainingRun:
    """A queued run leaves the queue at once; a running one stops at its next step. Like deleting,
    cancelling is for the run's creator and the dataset's editors and owner."""
    run = get_run_for(user, run_id, need="viewer")
    if not can_delete(user, run):
        raise DomainError("Only the person who started this training or an editor of its dataset can "
                          "cancel it.", 403)
    if run.finished:
        raise Conflict("This run has already finished.")
    if run.status == "queued":
        remove_job(run.job_id)
        done = db.session.execute(
            update(TrainingRun).where(TrainingRun.id == run.id, TrainingRun.status == "queued")
            .values(status="cancelled", finished_at=utcnow(), cancel_requested=True)).rowcount
        db.session.commit()
        db.session.refresh(run)
        if done:
            lifecycle.append_log(run, f"Cancelled by {user.username} before it started.")
            db.session.commit()
            log.info("train run=%s job=%s: queued -> cancelled", run.id, run.job_id)
            return run
    run.cancel_requested = True
    lifecycle.append_log(run, f"{user.username} asked to cancel; stopping after the current step…")
    db.session.commit()
    log.info("train run=%s job=%s: cancel requested", run.id, run.job_id)
    return run


def can_delete(user: User, run: TrainingRun) -> bool:
    """The run's creator, or an editor/owner of its dataset, may delete a model."""
    if run.created_by_id == user.id:
        return True
    try:
        get_dataset_for(user, run.dataset_id, need="editor")
    except DomainError:
        return False
    return True


def delete_run(user: User, run_id: int) -> int:
    """Delete a finished run and its files; returns its dataset id."""
    run = get_run_for(user, run_id, need="viewer")
    if not can_delete(user, run):
        raise DomainError("Only the person who trained this model or an editor of its dataset can delete it.", 403)
    if not run.finished:
        raise Conflict("This training is still queued or running. Cancel it first, then delete it.")
    dataset_id, folder = run.dataset_id, get_storage().run_dir(run.id)
    db.session.execute(update(Image).where(Image.label_model_id == run.id).values(label_model_id=None))
    db.session.delete(run)
    db.session.commit()
    shutil.rmtree(folder, ignore_errors=True)
    from app.serving import forget_model  # the serving cache must not keep it

    forget_model(run_id)
    log.info("train run=%s deleted by user=%s", run_id, user.id)
    return dataset_id


def save_threshold(user: User, run_id: int, raw_percent: str | None) -> TrainingRun:
    """Store the confidence (in percent; empty clears it) below which the model answers "not sure"."""
    from app.blueprints.training.thresholds import parse_percent

    run = get_run_for(user, run_id, need="viewer")
    if not can_delete(user, run):
        raise DomainError("Only the person who trained this model or an editor of its dataset can change "
                          "its threshold.", 403)
    if run.status != "succeeded":
        raise Conflict("This model has not finished training, so it has no threshold yet.")
    try:
        run.threshold = parse_percent(raw_percent)
    except ValueError:
        raise ValidationError("The threshold must be a number from 0 to 100 (percent), or empty for none.") from None
    db.session.commit()
    log.info("train run=%s threshold=%s set by user=%s", run.id, run.threshold, user.id)
    return run


# --- reading -------------------------------------------------------------------------------------

def view_run(user: User, run_id: int) -> TrainingRun:
    """The run for its pages; first fails runs whose worker died (cheap, throttled)."""
    run = get_run_for(user, run_id, need="viewer")
    lifecycle.maybe_reap()
    return run


def list_runs(user: User, sort: str = "date", dataset_id: int | None = None) -> list[TrainingRun]:
    """Every run on a dataset the user can see, newest first or best test accuracy first."""
    lifecycle.maybe_reap()
    visible = visible_datasets_query(user).with_only_columns(Dataset.id)
    query = select(TrainingRun).where(TrainingRun.dataset_id.in_(visible)).order_by(TrainingRun.created_at.desc(),
                                                                                   TrainingRun.id.desc())
    if dataset_id is not None:
        query = query.where(TrainingRun.dataset_id == dataset_id)
    runs = list(db.session.scalars(query).all())
    if sort == "accuracy":
        runs.sort(key=lambda r: (r.metrics or {}).get("accuracy") if r.status == "succeeded" and
                  (r.metrics or {}).get("accuracy") is not None else -1.0, reverse=True)
    return runs


def compare_runs(user: User, a: int | None, b: int | None) -> tuple[TrainingRun, TrainingRun]:
    """Two runs the user can see, for the side-by-side page."""
    if not a or not b:
        raise ValidationError("Pick two models to compare.")
    return get_run_for(user, a), get_run_for(user, b)


def artifact_file(user: User, run_id: int, kind: str):
    """(path, download name, mimetype) of one artifact of a succeeded run."""
    run = get_run_for(user, run_id, need="viewer")
    if kind not in DOWNLOADS:
        raise NotFound("There is no such download.")
    if run.status != "succeeded" or not run.artifact_dir:
        raise NotFound("This model has no files yet: its training has not succeeded.")
    filename, suffix, mimetype = DOWNLOADS[kind]
    path = get_storage().run_dir(run.id) / filename
    if not path.is_file():
        raise NotFound("This file is missing from storage.")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in run.name).strip("-")[:60] or "model"
    return path, f"{safe}-{run.id}{suffix}", mimetype
