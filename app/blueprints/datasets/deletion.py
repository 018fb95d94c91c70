"""Deleting a dataset in the background: the request only marks it `deleting` (from then on nobody sees
it: lists, pages and jobs treat it as gone). For DATASET_UNDO_SECONDS its owner can bring it back as it
was (`restore_dataset`); after that a worker's maintenance queues the job (at once when the setting is 0),
which removes its images 500 rows per transaction, then its classes, shares, imports, models and the
dataset row, its cached features, then the stored files that no other dataset uses. The job can run
again after a crash (the same maintenance re-queues it). Restoring ends RESTORE_MARGIN_S before the
job may be queued, so a restore never meets a purge under way."""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, or_, select, update
from flask_babel import gettext as _

from app import quotas
from app.batching import IN_CHUNK
from app.blueprints.datasets.images.importer import remove_upload
from app.blueprints.datasets.images.intake import remove_cached_features
from app.blueprints.datasets.images.removal import mark_for_removal, sweep_pending
from app.blueprints.datasets.images.undo import forget_dataset
from app.errors import Conflict, NotFound, QuotaExceeded
from app.extensions import db
from app.jobs import DELETE_DATASET, JobState, enqueue, job_alive
from app.models import Dataset, DatasetShare, Evaluation, Image, Import, Label, TrainingRun, utcnow
from app.filestore import run_prefix
from app.storage import get_storage

log = logging.getLogger(__name__)


def delete_job_id(dataset_id: int) -> str:
    """One job id per dataset, so the reaper can tell whether its deletion is still under way."""
    return f"{DELETE_DATASET.prefix}-{dataset_id}"


def _busy(model, dataset_id: int, statuses) -> int:
    return db.session.scalar(select(func.count(model.id)).where(
        model.dataset_id == dataset_id, model.status.in_(statuses))) or 0


def busy_reason(dataset_id: int) -> str | None:
    """Why the dataset cannot be deleted now (a training or an import under way), else None."""
    if _busy(TrainingRun, dataset_id, ("queued", "running")):
        return _("A model is still training on this dataset. Cancel it first, then delete the dataset.")
    if _busy(Import, dataset_id, Import.ACTIVE):
        return _("Images are still being imported into this dataset. Cancel the import first, "
                 "then delete the dataset.")
    return None


def delete_dataset(dataset: Dataset) -> None:
    """Hide the dataset at once and queue the removal of everything in it (see the module doc)."""
    reason = busy_reason(dataset.id)
    if reason:
        raise Conflict(reason)
    hide_dataset(dataset)
    db.session.commit()
    if undo_seconds() == 0:
        queue_purge(dataset.id)
    log.info("dataset=%s: marked for deletion", dataset.id)


def hide_dataset(dataset: Dataset) -> None:
    """Mark the dataset deleted and give its room back to the owner (the caller commits)."""
    dataset.deleting = True
    dataset.updated_at = utcnow()  # the undo window counts from here
    quotas.release_images(dataset.owner_id, *image_totals(dataset.id))  # its room is the owner's at once


RESTORE_MARGIN_S = 10


def undo_seconds() -> int:
    return max(0, int(current_app.config["DATASET_UNDO_SECONDS"]))


def _restorable(user_id: int, dataset_id: int):
    window = timedelta(seconds=undo_seconds() - RESTORE_MARGIN_S)
    return (Dataset.id == dataset_id, Dataset.owner_id == user_id, Dataset.deleting.is_(True),
            Dataset.updated_at > utcnow() - window)


def image_totals(dataset_id: int) -> tuple[int, int]:
    """(images, bytes) the dataset holds."""
    count, nbytes = db.session.execute(select(func.count(Image.id), func.coalesce(func.sum(Image.size_bytes), 0))
                                       .where(Image.dataset_id == dataset_id)).one()
    return int(count), int(nbytes)


def restorable(user_id: int, dataset_id: int) -> Dataset | None:
    """The user's dataset deleted moments ago, while it can still be brought back."""
    return db.session.scalar(select(Dataset).where(*_restorable(user_id, dataset_id)))


def restore_dataset(user_id: int, dataset_id: int) -> Dataset:
    """Bring back a dataset its owner deleted moments ago, untouched; NotFound when it is not theirs or
    it is too late (its removal may be under way)."""
    restored = db.session.execute(update(Dataset).where(*_restorable(user_id, dataset_id))
                                  .values(deleting=False, updated_at=utcnow())).rowcount
    if restored != 1 or job_alive(delete_job_id(dataset_id)):
        db.session.rollback()
        raise NotFound(_("This dataset can no longer be brought back: it is being removed."))
    count, nbytes = image_totals(dataset_id)
    if not quotas.reserve_images(user_id, count, nbytes):  # its room was given back at the delete
        db.session.rollback()
        raise QuotaExceeded(quotas.images_full_message(user_id, count, nbytes)
                            + " " + _("The dataset stays deleted."))
    db.session.commit()
    log.info("dataset=%s: deletion undone", dataset_id)
    return db.session.get(Dataset, dataset_id)


def queue_purge(dataset_id: int) -> None:
    """Queue the job that removes a dataset marked `deleting` (the maintenance queues it again if lost)."""
    try:
        enqueue(DELETE_DATASET, dataset_id, job_id=delete_job_id(dataset_id),
                description=f"delete dataset {dataset_id}")
    except Exception:  # the dataset is hidden already; the reaper queues it again later
        log.exception("dataset=%s: could not queue its deletion", dataset_id)


def purge_dataset(dataset_id: int) -> dict:
    """The job's work: remove a dataset marked `deleting` and everything in it, in short transactions."""
    dataset = db.session.get(Dataset, dataset_id)
    if dataset is None or not dataset.deleting:
        return {"dataset_id": dataset_id, "status": "skipped"}
    images = _delete_images_in_chunks(dataset_id)
    forget_dataset(dataset_id)  # deleted images it could still restore: their files go too
    run_ids = list(db.session.scalars(select(TrainingRun.id).where(TrainingRun.dataset_id == dataset_id)))
    for imp in db.session.scalars(select(Import).where(Import.dataset_id == dataset_id)).all():
        remove_upload(imp)
    if run_ids:  # images elsewhere labelled by these models keep their label, not the model link
        db.session.execute(update(Image).where(Image.label_model_id.in_(run_ids)).values(label_model_id=None))
        from app.blueprints.training.deletion import forget_defaults  # it imports this module's undo window

        forget_defaults(run_ids)
    # Explicit deletes, not ON DELETE CASCADE: each table in its own short statement, whatever the database.
    # Evaluations first: those of its models, and those of any model made on its images.
    db.session.execute(delete(Evaluation).where(or_(
        Evaluation.dataset_id == dataset_id,
        Evaluation.run_id.in_(select(TrainingRun.id).where(TrainingRun.dataset_id == dataset_id)))))
    for model in (Label, DatasetShare, Import, TrainingRun):
        db.session.execute(delete(model).where(model.dataset_id == dataset_id))
    db.session.execute(delete(Dataset).where(Dataset.id == dataset_id))
    db.session.commit()
    storage = get_storage()
    for run_id in run_ids:
        storage.delete_prefix(run_prefix(run_id))
    for folder in ("health", "suggestions"):  # computed reports kept beside the dataset
        JobState(folder, dataset_id).remove()
    remove_cached_features(dataset_id)
    removed = sweep_pending()
    log.info("dataset=%s: deleted (%d images, %d models, %d files removed)", dataset_id, images, len(run_ids),
             removed)
    return {"dataset_id": dataset_id, "status": "deleted", "images": images, "files_removed": removed}


def _delete_images_in_chunks(dataset_id: int) -> int:
    """Delete the dataset's image rows IN_CHUNK at a time, recording their files for removal (their quota
    room went back to the owner when the dataset was deleted)."""
    count = 0
    while True:
        rows = db.session.execute(select(Image.id, Image.sha256, Image.size_bytes)
                                  .where(Image.dataset_id == dataset_id).order_by(Image.id).limit(IN_CHUNK)).all()
        if not rows:
            return count
        mark_for_removal({sha for _, sha, _ in rows})
        db.session.execute(delete(Image).where(Image.id.in_([i for i, _, _ in rows])))
        db.session.commit()
        count += len(rows)


def requeue_stalled_deletions(grace_s: float = 60) -> int:
    """Queue the removal of datasets marked `deleting` whose undo window has passed, and again those whose
    job is gone (worker killed, queue lost); returns how many were queued."""
    cutoff = utcnow() - timedelta(seconds=max(grace_s, undo_seconds()))  # past the undo window too
    ids = list(db.session.scalars(select(Dataset.id).where(Dataset.deleting.is_(True),
                                                           Dataset.updated_at < cutoff)))
    db.session.commit()  # end the read transaction
    stalled = [i for i in ids if not job_alive(delete_job_id(i))]
    for dataset_id in stalled:
        queue_purge(dataset_id)
    return len(stalled)
