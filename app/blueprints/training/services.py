"""Training runs: start (with a frozen sample list), cancel, retry, delete (undoable: deletion.py), list,
compare."""
from __future__ import annotations

import json
import logging
import re
from typing import Any, Callable

from sqlalchemy import String, cast, delete, select, update
from sqlalchemy.orm import defer, selectinload
from flask_babel import gettext as _

from app import quotas
from app.access import get_dataset_for, get_run_for, visible_runs_query
from app.blueprints.training import deletion, lifecycle, samples
from app.blueprints.webhooks.services import notify as notify_webhooks
from app.blueprints.training.forms import (MODE_HELP, default_name, free_number, name_parts, numbered,
                                          preselected_network)
from app.errors import Conflict, DomainError, RequestInvalid, ValidationError
from app.extensions import db
from app.i18n import N_, ngettext, stored_line, stored_text
from app.jobs import TRAIN, enqueue, new_job_id, remove_job
from app.models import Dataset, TrainingRun, User, utcnow
from app.filestore import run_key
from app.storage import get_storage

log = logging.getLogger(__name__)


# --- dataset facts shown on the form -----------------------------------------------------------

label_counts = samples.label_counts  # labelled images per class name, shown on the form


def default_architecture(dataset_id: int) -> str:
    """The network the Train form preselects for the dataset: the usable one that best suits its number of
    labelled images (with none usable, the catalogue's default, whose start then says why)."""
    from app.ml.networks import DEFAULT_ARCHITECTURE, list_architectures

    return preselected_network(list_architectures(), sum(label_counts(dataset_id).values())) or DEFAULT_ARCHITECTURE


def dataset_for_training(user: User, dataset_id: int) -> Dataset:
    """Anyone who can see a dataset may train on it (training never changes the dataset)."""
    return get_dataset_for(user, dataset_id, need="viewer")


def run_names(dataset: Dataset) -> set[str]:
    """The names on the dataset's runs that a default name could clash with (those starting "<dataset> · "),
    deleted ones still in their undo window too: they can come back."""
    prefix = name_parts(dataset.name)[0]
    return set(db.session.scalars(select(TrainingRun.name).where(
        TrainingRun.dataset_id == dataset.id, TrainingRun.name.startswith(prefix, autoescape=True))))


NUMBER_MARK = re.compile(r" \(\d+\)$")


def _unique_if_default(dataset: Dataset, name: str) -> str:
    """A default name (dataset · mode · date, numbered or not) that another run of the dataset has by now
    takes the next free number: two forms prefilled alike, or API calls without a name, name two models."""
    base = NUMBER_MARK.sub("", name)
    if base not in {default_name(dataset.name, mode) for mode in MODE_HELP}:
        return name
    taken = run_names(dataset)
    return numbered(base, free_number(base, taken)) if name in taken else name


def _unused_name(dataset_id: int, name: str) -> str:
    """`name`, numbered when another run of the dataset has it: a retry of a retry, or a second "Train more"
    of the same model, is not a twin of the first."""
    name = name[:120]
    taken = set(db.session.scalars(select(TrainingRun.name).where(
        TrainingRun.dataset_id == dataset_id, TrainingRun.name.startswith(name[:100], autoescape=True))))
    return numbered(name, free_number(name, taken))


# --- starting a run ----------------------------------------------------------------------------

class OptionsRefused(ValidationError, RequestInvalid):
    """Options that do not work (422): a ValidationError the pages say as they say any other, and, as a
    RequestInvalid, the API's answer names each option at fault in `fields`, shaped like the request body
    ({"options": {"seed": [...]}}, or "architecture" / "mode" at the top)."""


def _request_fields(exc) -> dict:
    fields: dict = {}
    for name, message in (getattr(exc, "fields", None) or {}).items():
        place = fields if name in ("architecture", "mode") else fields.setdefault("options", {})
        place[name] = [message]
    return fields


def _parse_options(architecture: str, mode: str, values: dict[str, Any]):
    from app.ml.errors import ArchitectureUnavailable, InvalidOptions, UnknownArchitecture
    from app.ml.networks import get_architecture
    from app.ml.options import TrainOptions

    try:
        get_architecture(architecture)
        return TrainOptions.from_dict({**values, "architecture": architecture, "mode": mode})
    except ArchitectureUnavailable as exc:
        raise ValidationError(_("This network cannot be used right now: %(reason)s.", reason=exc.reason)) from None
    except (InvalidOptions, UnknownArchitecture) as exc:  # e.g. a retry of a run whose options no longer apply
        raise OptionsRefused(stored_text(exc.line) if exc.line else exc.message, fields=_request_fields(exc)) from None


def start_run(user: User, dataset_id: int, name: str, architecture: str, mode: str,
              values: dict[str, Any]) -> TrainingRun:
    """Validate, create the run, freeze its images (samples.py) and queue its job. Nothing is left on failure."""
    dataset = dataset_for_training(user, dataset_id)
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("Give the model a name."))
    quotas.check_can_queue_run(user.id)
    name = _unique_if_default(dataset, name[:120])
    options = _parse_options(architecture, mode, values)
    planned = samples.plan(dataset.id, options)  # grouped counts only: the per-image work is the job's
    run = TrainingRun(dataset_id=dataset.id, created_by_id=user.id, name=name[:120],
                      architecture=options.architecture, mode=options.mode, options=options.to_dict(),
                      snapshot=planned.summary, classes=planned.classes, status="queued")
    return _queue(run, stored_line(N_("Queued by %(user)s: %(images)s images, %(classes)s classes."),
                                   user=user.username, images=planned.total, classes=len(planned.classes)),
                  lambda run_id: samples.freeze(run_id, dataset.id))


def _queue(run: TrainingRun, message: str | dict, write_samples: Callable[[int], None]) -> TrainingRun:
    """Commit the run, write its samples (frozen rows, or a copied list), then give it a job and queue it.

    Until its job id is set no worker can take the run and the reaper leaves it alone; if anything
    fails on the way the run (and with it every sample row written) is deleted again."""
    lifecycle.append_log(run, message)
    db.session.add(run)
    db.session.commit()
    try:
        quotas.check_can_queue_run(run.created_by_id, counting_new=True)  # never past the limit, even for two requests at once
        write_samples(run.id)
        run.job_id, run.created_at = new_job_id(TRAIN, run.id), utcnow()
        db.session.commit()
    except Exception:
        _discard(run.id)
        raise
    try:
        enqueue(TRAIN, run.id, job_id=run.job_id, description=f"train run {run.id}")
    except Exception:
        log.exception("could not enqueue run %s", run.id)
        _discard(run.id)
        raise DomainError(_("The training queue is not reachable right now. Try again in a minute."), 503) from None
    log.info("train run=%s job=%s: created -> queued", run.id, run.job_id)
    return run


def _discard(run_id: int) -> None:
    """Delete a run that could not be queued; its sample rows go with it (ON DELETE CASCADE)."""
    db.session.rollback()
    db.session.execute(delete(TrainingRun).where(TrainingRun.id == run_id))
    db.session.commit()


def retry_run(user: User, run_id: int) -> TrainingRun:
    """A new run with the same settings and the same frozen samples as a failed/cancelled one."""
    old = get_run_for(user, run_id, need="viewer")
    if old.status not in ("failed", "cancelled"):
        raise Conflict(_("Only failed or cancelled runs can be retried."))
    if old.continued_from_id is not None and db.session.scalar(
            select(TrainingRun.deleting).where(TrainingRun.id == old.continued_from_id)):
        raise Conflict(_("The model this run continues was deleted, so it cannot be trained again. Restore "
                         "that model first, or start a new training."))
    quotas.check_can_queue_run(user.id)
    _parse_options(old.architecture, old.mode, {k: v for k, v in old.options.items()
                                                if k not in ("architecture", "mode")})
    retried = NUMBER_MARK.sub("", old.name)  # "X (retry) (2)" retried is "X (retry) (3)", not "... (retry)"
    name = _unused_name(old.dataset_id, retried if retried.endswith("(retry)") else f"{old.name} (retry)")
    run = TrainingRun(dataset_id=old.dataset_id, created_by_id=user.id, name=name,
                      architecture=old.architecture, mode=old.mode, options=dict(old.options),
                      snapshot=dict(old.snapshot or {}), classes=list(old.classes), status="queued",
                      continued_from_id=old.continued_from_id)  # a retried "Train more" continues too
    return _queue(run, stored_line(N_("Retry of run #%(run)s, queued by %(user)s."), run=str(old.id),
                                   user=user.username), _copy_samples_of(old))


def _copy_samples_of(old: TrainingRun) -> Callable[[int], None]:
    """Writes `old`'s frozen samples for a new run; refuses a missing or incomplete list."""
    old_id, expected = old.id, (old.snapshot or {}).get("total")

    def copy_samples(new_id: int) -> None:
        copied = samples.copy(old_id, new_id)
        if not copied or (expected is not None and copied != expected):
            raise ValidationError(_("This run's frozen image list is missing or incomplete, so it cannot be "
                                    "trained again. Start a new training instead."))

    return copy_samples


def train_more(user: User, run_id: int, raw_epochs: str | None) -> TrainingRun:
    """A new run that continues a succeeded run's checkpoint for N more epochs on the same frozen samples
    (its epochs numbered on from the checkpoint's, the optimizer state carried over)."""
    from app.ml.artifacts import CHECKPOINT

    old = get_run_for(user, run_id, need="viewer")
    if old.status != "succeeded":
        raise Conflict(_("Only a model whose training succeeded can be trained more."))
    try:
        epochs = int(str(raw_epochs or "").strip())
    except ValueError:
        epochs = 0
    if not 1 <= epochs <= 1000:
        raise ValidationError(_("Give the number of extra epochs: a whole number from 1 to 1000."))
    if not get_storage().exists(run_key(old.id, CHECKPOINT)):
        raise Conflict(_("This model's checkpoint is missing from storage, so it cannot be continued."))
    values = {k: v for k, v in old.options.items() if k not in ("architecture", "mode")}
    chosen = ((old.metrics or {}).get("head_choice") or {}).get("chosen")
    values.update(epochs=epochs, **({"head": chosen} if old.mode == "quick" and chosen else {}))
    options = _parse_options(old.architecture, old.mode, values)
    start = (old.metrics or {}).get("best_epoch") or 0
    name = _unused_name(old.dataset_id, f"{old.name} (+{epochs} epochs)")
    run = TrainingRun(dataset_id=old.dataset_id, created_by_id=user.id, name=name,
                      architecture=old.architecture, mode=old.mode, options=options.to_dict(),
                      snapshot=dict(old.snapshot or {}), classes=list(old.classes), status="queued",
                      continued_from_id=old.id)
    return _queue(run, stored_line(N_("Continues run #%(run)s from its checkpoint (epoch %(start)s) for "
                                      "%(epochs)s more epochs; queued by %(user)s."),
                                   run=str(old.id), start=start, epochs=epochs, user=user.username),
                  _copy_samples_of(old))


# --- a deleted account ---------------------------------------------------------------------------

DELETED_USER = N_("a deleted user")


def forget_user_in_logs(username: str) -> None:
    """Runs' log lines that name `username` (who queued, retried, continued or cancelled a run) say "a deleted
    user" instead, in every language: the account is being deleted, and runs of datasets handed over or of
    other people stay (not committed). A rare, whole-table search, in the database."""
    needle = json.dumps(username)[1:-1]  # as the JSON column holds it (non-ASCII written as \u escapes)
    named = select(TrainingRun).where(cast(TrainingRun.log, String).contains(needle, autoescape=True))
    for run in db.session.scalars(named).all():
        run.log = [_unnamed(entry, username) for entry in run.log]


def _unnamed(entry: dict, username: str) -> dict:
    values = entry.get("values") or {}
    if not entry.get("key") or values.get("user") != username:
        return entry
    return {**entry, **stored_line(entry["key"], **{**values, "user": stored_line(DELETED_USER)})}


# --- cancel / delete -----------------------------------------------------------------------------

def cancel_run(user: User, run_id: int) -> TrainingRun:
    """A queued run leaves the queue at once; a running one stops at its next step. Like deleting,
    cancelling is for the run's creator and the dataset's editors and owner."""
    run = get_run_for(user, run_id, need="viewer")
    if not can_delete(user, run):
        raise DomainError(_("Only the person who started this training or an editor of its dataset can "
                            "cancel it."), 403)
    if run.finished:
        raise Conflict(_("This run has already finished."))
    if run.status == "queued":
        remove_job(run.job_id)
        done = db.session.execute(
            update(TrainingRun).where(TrainingRun.id == run.id, TrainingRun.status == "queued")
            .values(status="cancelled", finished_at=utcnow(), cancel_requested=True)).rowcount
        db.session.commit()
        db.session.refresh(run)
        if done:
            lifecycle.append_log(run, stored_line(N_("Cancelled by %(user)s before it started."), user=user.username))
            db.session.commit()
            log.info("train run=%s job=%s: queued -> cancelled", run.id, run.job_id)
            notify_webhooks("run.finished", run.id)
            return run
    run.cancel_requested = True
    lifecycle.append_log(run, stored_line(N_("%(user)s asked to cancel; stopping after the current step…"),
                                          user=user.username))
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
    """Delete a finished run: hidden at once, restorable for a while, then purged with its files
    (deletion.py); returns its dataset id."""
    run = get_run_for(user, run_id, need="viewer")
    if not can_delete(user, run):
        raise DomainError(_("Only the person who trained this model or an editor of its dataset can delete it."), 403)
    if not run.finished:
        raise Conflict(_("This training is still queued or running. Cancel it first, then delete it."))
    continuing = db.session.scalar(select(TrainingRun.id).where(
        TrainingRun.continued_from_id == run.id, TrainingRun.status.in_(("queued", "running"))).limit(1))
    if continuing:
        raise Conflict(_("Model #%(id)s is being trained on from this model's checkpoint. Wait until it "
                         "finishes (or cancel it), then delete this model.", id=continuing))
    dataset_id = run.dataset_id
    log.info("train run=%s deleted by user=%s", run_id, user.id)
    deletion.hide_run(run)
    return dataset_id


def restorable_run(user: User, run_id: int) -> TrainingRun | None:
    """The run deleted moments ago that this user may bring back (whoever may delete it), else None."""
    run = deletion.restorable(run_id)
    if run is None:
        return None
    try:
        get_dataset_for(user, run.dataset_id, need="viewer")
    except DomainError:
        return None
    return run if can_delete(user, run) else None


def restore_run(user: User, run_id: int) -> TrainingRun:
    """Undo deleting a model, within the undo window; NotFound after it or for someone else."""
    run = restorable_run(user, run_id)
    if run is None:
        raise deletion.too_late()
    run = deletion.restore(run, by_user_id=user.id)
    log.info("train run=%s restored by user=%s", run_id, user.id)
    return run


def save_threshold(user: User, run_id: int, raw_percent: str | None) -> TrainingRun:
    """Store the confidence (in percent; empty clears it) below which the model answers "not sure"."""
    from app.blueprints.training.thresholds import parse_percent

    run = get_run_for(user, run_id, need="viewer")
    if not can_delete(user, run):
        raise DomainError(_("Only the person who trained this model or an editor of its dataset can change "
                            "its threshold."), 403)
    if run.status != "succeeded":
        raise Conflict(_("This model has not finished training, so it has no threshold yet."))
    try:
        run.threshold = parse_percent(raw_percent)
    except ValueError:
        raise ValidationError(_("The threshold must be a number from 0 to 100 (percent), or empty for none.")) from None
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
    """Every run on a dataset the user can see, newest first or best validation accuracy first (models
    are ranked on validation images; the test score is only reported, so it stays unbiased)."""
    from app.blueprints.training.results import validation_score

    lifecycle.maybe_reap()
    query = (visible_runs_query(user)
             .order_by(TrainingRun.created_at.desc(), TrainingRun.id.desc())
             # the list shows names, status and accuracy: leave the per-epoch/log JSON of every run unread
             .options(defer(TrainingRun.history), defer(TrainingRun.log), defer(TrainingRun.progress),
                      defer(TrainingRun.snapshot), selectinload(TrainingRun.dataset)))
    if dataset_id is not None:
        query = query.where(TrainingRun.dataset_id == dataset_id)
    runs = list(db.session.scalars(query).all())
    if sort == "accuracy":
        runs.sort(key=lambda r: -1.0 if validation_score(r) is None else validation_score(r), reverse=True)
    return runs


def compare_runs(user: User, picks: list[int], a: int | None = None,
                 b: int | None = None) -> tuple[TrainingRun, TrainingRun]:
    """Two runs the user can see, for the side-by-side page: ?a=&b= when given, else the two models
    ticked on the list page (exactly two: the message says how many were)."""
    ids = list(dict.fromkeys([i for i in (a, b) if i] if (a or b) else picks))  # a model twice is one pick
    if len(ids) != 2:
        raise ValidationError(ngettext("Tick two models to compare; %(num)s is ticked.",
                                       "Tick two models to compare; %(num)s are ticked.", len(ids)))
    return get_run_for(user, ids[0]), get_run_for(user, ids[1])
