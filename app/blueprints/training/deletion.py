"""Deleting a model (a training run) so that it can be undone, as a dataset can.

The request only marks the run `deleting` (with `deleted_at`): from then on it is gone for everyone
(`app.access` answers 404, every list leaves it out, /predict refuses it) and the web process's model cache
forgets it. For DATASET_UNDO_SECONDS whoever could delete it may bring it back as it was
(`restore`); the window closes RESTORE_MARGIN_S early, so a restore never meets a purge under way. After
the window the worker's maintenance purges it (`purge_deleted_runs`; at once when the setting is 0): its
stored files first, then its frozen samples in short transactions, then its row. Each step can run again,
so a purge that crashed half way is simply done again by the next maintenance pass.

A user's default model or the site's default that points at a deleted model is left as it is while it can
be restored: a hidden model is skipped wherever a default is read, and a restored one is the default again
unless another was chosen meanwhile. The purge clears such defaults.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from flask_babel import gettext as _

from app import quotas
# the same window as datasets: how long a deletion can be undone, closing RESTORE_MARGIN_S early
from app.blueprints.datasets.deletion import RESTORE_MARGIN_S, undo_seconds
from app.errors import NotFound, QuotaExceeded
from app.extensions import db
from app.filestore import run_prefix
from app.batching import chunked
from app.models import Image, RunSample, Setting, TrainingRun, User, utcnow
from app.storage import get_storage

log = logging.getLogger(__name__)

SAMPLE_CHUNK = 2000  # frozen samples deleted per transaction (a run on 200,000 images has as many)
PURGES_PER_PASS = 20  # runs one maintenance pass purges; the rest wait for the next pass


def too_late() -> NotFound:
    return NotFound(_("This model can no longer be brought back: it has been deleted for good, or you "
                      "cannot restore it."))


def _forget(run_id: int) -> None:
    from app.serving import forget_model  # numpy: loaded only where models are served or purged

    forget_model(run_id)


def hide_run(run: TrainingRun) -> None:
    """Mark the run deleted (see the module doc); purged at once when there is no undo window."""
    run.deleting, run.deleted_at = True, utcnow()
    db.session.commit()
    _forget(run.id)  # this process serves it no more; other processes refuse it at the lookup
    log.info("train run=%s: marked for deletion", run.id)
    if undo_seconds() == 0:
        purge_run(run.id)


def _restorable(run_id: int):
    window = timedelta(seconds=undo_seconds() - RESTORE_MARGIN_S)
    return (TrainingRun.id == run_id, TrainingRun.deleting.is_(True), TrainingRun.deleted_at > utcnow() - window)


def restorable(run_id: int) -> TrainingRun | None:
    """The run deleted moments ago, while it can still be brought back (who may: the caller checks)."""
    return db.session.scalar(select(TrainingRun).where(*_restorable(run_id)))


def restore(run: TrainingRun, by_user_id: int | None = None) -> TrainingRun:
    """Bring the run back as it was; NotFound when it is too late. Its model counts against its creator's
    quota again (its room went back at the delete): QuotaExceeded, and it stays deleted, when that is full
    (said of the creator when someone else, an editor, restores it)."""
    restored = db.session.execute(update(TrainingRun).where(*_restorable(run.id))
                                  .values(deleting=False, deleted_at=None)).rowcount
    if restored != 1:
        db.session.rollback()
        raise too_late()
    if run.created_by_id is not None:
        try:
            quotas.check_models_within_quota(run.created_by_id)
        except QuotaExceeded as err:
            db.session.rollback()
            if by_user_id is not None and by_user_id != run.created_by_id:
                raise QuotaExceeded(_creators_quota_full(run.created_by_id)) from None
            raise QuotaExceeded(err.message + " " + _("The model stays deleted.")) from None
    db.session.commit()
    db.session.refresh(run)
    log.info("train run=%s: deletion undone", run.id)
    return run


def _creators_quota_full(user_id: int) -> str:
    creator = db.session.get(User, user_id)
    return _("%(name)s, who trained this model, has no room for another model in their quota. The model stays "
             "deleted: they can delete a model they no longer need, or an administrator can give them more.",
             name=creator.username if creator else "?")


def purge_run(run_id: int) -> bool:
    """Remove a run marked `deleting`: files, samples, row (what deleting a model did at once before it
    could be undone). False when there is nothing to do (restored, or purged already)."""
    run = db.session.get(TrainingRun, run_id)
    marked = run is not None and run.deleting
    db.session.commit()  # end the read transaction
    if not marked:
        return False
    _forget(run_id)
    get_storage().delete_prefix(run_prefix(run_id))  # first: a crash after it leaves the row to purge again
    while True:  # newest positions first, SAMPLE_CHUNK at a time, each its own short transaction
        top = db.session.scalar(select(func.max(RunSample.position)).where(RunSample.run_id == run_id))
        if top is None:
            break
        db.session.execute(delete(RunSample).where(RunSample.run_id == run_id,
                                                   RunSample.position > top - SAMPLE_CHUNK))
        db.session.commit()
    # Images it labeled (accepted suggestions) keep their label, not the link to the model; runs that
    # continued from it lose their link through the foreign key (ON DELETE SET NULL).
    db.session.execute(update(Image).where(Image.label_model_id == run_id).values(label_model_id=None))
    forget_defaults([run_id])
    db.session.delete(run)  # through the session, so no one holding the object reads a vanished row
    db.session.commit()
    log.info("train run=%s: deleted with its files", run_id)
    return True


def forget_defaults(run_ids: list[int]) -> None:
    """Users' and the site's default model stop naming these runs, removed for good (the caller commits):
    SQLite hands a freed highest id out again, so a default left behind could name the next new model."""
    from app.blueprints.predict.services import INSTANCE_DEFAULT_KEY

    for part in chunked(run_ids):
        db.session.execute(update(User).where(User.default_model_id.in_(part)).values(default_model_id=None))
    setting = db.session.get(Setting, INSTANCE_DEFAULT_KEY)
    if setting is not None and setting.value in run_ids:
        setting.value = None


def purge_deleted_runs() -> int:
    """The worker's maintenance: purge runs whose undo window has passed (also those whose purge was cut
    short by a crash); returns how many were purged."""
    cutoff = utcnow() - timedelta(seconds=undo_seconds())
    ids = list(db.session.scalars(select(TrainingRun.id).where(
        TrainingRun.deleted_at < cutoff, TrainingRun.deleting.is_(True))
        .order_by(TrainingRun.deleted_at).limit(PURGES_PER_PASS)))
    db.session.commit()  # end the read transaction
    return sum(1 for run_id in ids if purge_run(run_id))
