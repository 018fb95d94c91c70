"""The fair training queue: which queued run a worker trains next.

RQ hands out jobs first-in, first-out, so one person queueing many runs would hold every worker. Each run
still gets its own RQ job when it is queued (a "ticket"), but the ticket does not decide which run it
trains: when a worker starts a ticket, `claim_fair` picks the queued run whose owner is served least -
fewest runs running now, then the longest since their last run started, then the oldest run - and claims
that one. So runs of several people alternate (round-robin) on a single worker, and several workers are
shared out the same way. The ticket of the chosen run, still waiting in RQ, is handed to the run the
started ticket was queued for: every queued run keeps exactly one waiting job (the reaper, cancelling
and queue positions rely on it), and every running run is named by the job that runs it.

How many runs one person may have queued or running at once is a quota (app/quotas.py, active_runs).
"""
from __future__ import annotations

import logging
import os
import socket
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select, update

from app.database import retry_write
from app.extensions import db
from app.models import TrainingRun, utcnow

log = logging.getLogger(__name__)
ATTEMPTS = 5  # another worker may claim the chosen run first: pick again this often


def next_run_id() -> int | None:
    """The queued run (with a job, not being cancelled) that is fairest to train next, or None."""
    queued = db.session.execute(select(TrainingRun.id, TrainingRun.created_by_id).where(
        TrainingRun.status == "queued", TrainingRun.job_id.is_not(None),
        TrainingRun.cancel_requested.is_(False)).order_by(TrainingRun.id)).all()
    if not queued:
        return None
    users = {user for _, user in queued if user is not None}
    by_user = TrainingRun.created_by_id.in_(users)
    running = dict(db.session.execute(select(TrainingRun.created_by_id, func.count(TrainingRun.id)).where(
        by_user, TrainingRun.status == "running").group_by(TrainingRun.created_by_id)).all())
    last_start = dict(db.session.execute(select(TrainingRun.created_by_id, func.max(TrainingRun.started_at))
                                         .where(by_user).group_by(TrainingRun.created_by_id)).all())

    def rank(row) -> tuple:
        run_id, user = row
        return running.get(user, 0), last_start.get(user) or datetime.min, run_id

    return min(queued, key=rank)[0]


def _take(run_id: int, ticket_run_id: int, job_id: str | None, worker: str) -> bool:
    """Claim run `run_id` (queued -> running) for the job `job_id` that was queued for `ticket_run_id`;
    the chosen run's own waiting job goes to the ticket's run. Not committed; False if someone was first."""
    now = utcnow()
    values = {"status": "running", "started_at": now, "heartbeat_at": now, "worker_name": worker}
    waiting_job = db.session.scalar(select(TrainingRun.job_id).where(TrainingRun.id == run_id))
    if job_id is not None:
        values["job_id"] = job_id
    claimed = db.session.execute(update(TrainingRun).where(
        TrainingRun.id == run_id, TrainingRun.status == "queued", TrainingRun.cancel_requested.is_(False),
        TrainingRun.job_id == waiting_job).values(**values)).rowcount
    if claimed != 1:
        return False
    if run_id != ticket_run_id and job_id is not None:
        db.session.execute(update(TrainingRun).where(
            TrainingRun.id == ticket_run_id, TrainingRun.status == "queued", TrainingRun.job_id == job_id)
            .values(job_id=waiting_job))
    return True


def claim_fair(ticket_run_id: int, job_id: str | None = None, worker_name: str | None = None) -> TrainingRun | None:
    """The run the job queued for `ticket_run_id` should train (see the module doc), claimed for it; None
    when no run is waiting (every queued run was cancelled or taken by other workers)."""
    worker = (worker_name or f"{socket.gethostname()}.{os.getpid()}")[:120]

    def write() -> int | None:
        for _ in range(ATTEMPTS):
            chosen = next_run_id()
            if chosen is None:
                db.session.commit()  # end the read transaction
                return None
            if _take(chosen, ticket_run_id, job_id, worker):
                db.session.commit()
                return chosen
            db.session.rollback()
        return None

    run_id = retry_write(write, float(current_app.config["TRAIN_DB_RETRY_SECONDS"]), f"claim for job {job_id}")
    if run_id is not None and run_id != ticket_run_id:
        log.info("train job=%s queued for run=%s trains run=%s (fair queue)", job_id, ticket_run_id, run_id)
    return db.session.get(TrainingRun, run_id) if run_id is not None else None
