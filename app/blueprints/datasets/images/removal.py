"""Removing stored files after image rows are deleted, in chunks and crash-safe.

Deleting images records their hashes in pending_file_removals in the same transaction. Then either the
request (a few files) or a job (many) removes every recorded file that no image references any more:
original, thumbnail and cached features. Files are unlinked before their pending rows are deleted, so a
crash at any point leaves only work for the next sweep, never a file nobody will remove.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, insert, select

from app.batching import chunked
from app.blueprints.datasets.images.intake import remove_unreferenced
from app.extensions import db
from app.jobs import REMOVE_FILES, enqueue, job_alive
from app.models import PendingFileRemoval, utcnow

log = logging.getLogger(__name__)


def mark_for_removal(shas) -> None:
    """Record hashes whose rows are being deleted (the caller commits, together with the delete)."""
    now = utcnow()
    for part in chunked(sorted(set(shas))):
        db.session.execute(insert(PendingFileRemoval), [{"sha256": sha, "created_at": now} for sha in part])


def sweep_shas(shas) -> int:
    """Remove the files of these recorded hashes now (when unreferenced); returns how many were removed."""
    shas = sorted(set(shas))
    removed = 0
    for part in chunked(shas):
        removed += remove_unreferenced(part)
        db.session.execute(delete(PendingFileRemoval).where(PendingFileRemoval.sha256.in_(part)))
        db.session.commit()
    return removed


def sweep_pending() -> int:
    """Work through every recorded hash, 500 at a time; returns how many hashes' files were removed."""
    removed, last_id = 0, 0
    while True:
        rows = db.session.execute(select(PendingFileRemoval.id, PendingFileRemoval.sha256)
                                  .where(PendingFileRemoval.id > last_id)
                                  .order_by(PendingFileRemoval.id).limit(500)).all()
        if not rows:
            return removed
        removed += remove_unreferenced({sha for _, sha in rows})
        db.session.execute(delete(PendingFileRemoval).where(PendingFileRemoval.id.in_([i for i, _ in rows])))
        db.session.commit()
        last_id = rows[-1][0]


SWEEP_JOB_ID = REMOVE_FILES.prefix  # one sweep at a time: a waiting or running one takes every recorded hash


def schedule_sweep() -> None:
    """Let a job remove the recorded files, unless one is already waiting or running."""
    try:
        if not job_alive(SWEEP_JOB_ID):
            enqueue(REMOVE_FILES, job_id=SWEEP_JOB_ID, description="remove files of deleted images")
    except Exception:  # the rows are deleted; the next sweep (any delete, the worker) catches up
        log.exception("could not queue the removal of deleted images' files")


def schedule_forgotten(grace_s: float = 300) -> int:
    """Queue a sweep when recorded files have waited longer than grace_s (their job was lost); 1 if so."""
    cutoff = utcnow() - timedelta(seconds=grace_s)
    waiting = db.session.scalar(select(PendingFileRemoval.id).where(PendingFileRemoval.created_at < cutoff)
                                .limit(1))
    db.session.commit()  # end the read transaction
    if waiting is None:
        return 0
    schedule_sweep()
    return 1
