"""Queueing jobs and reading their RQ status. Timeouts and result lifetimes come from the config."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job, Retry

from app.extensions import get_queue, get_redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobKind:
    """One kind of background job: its task function (dotted path), timeout setting and id prefix."""

    func: str
    timeout_key: str
    prefix: str
    result_ttl_key: str = "JOB_RESULT_TTL"
    queue: str = ""  # "": the main queue; else the suffix of its sibling queue (extensions.get_queue)


TRAIN = JobKind("app.jobs.training.train_run", "TRAIN_JOB_TIMEOUT", "train", "TRAIN_RESULT_TTL")
HEALTH = JobKind("app.jobs.health.check_dataset_health", "HEALTH_JOB_TIMEOUT", "health")
SUGGEST = JobKind("app.jobs.suggestions.suggest_labels", "SUGGEST_JOB_TIMEOUT", "suggest")
NETWORK = JobKind("app.jobs.networks.install_network", "NETWORK_JOB_TIMEOUT", "network")
IMPORT = JobKind("app.jobs.imports.run_import", "IMPORT_JOB_TIMEOUT", "import")
LABELS = JobKind("app.jobs.imports.run_label_import", "IMPORT_JOB_TIMEOUT", "labels")
DELETE_DATASET = JobKind("app.jobs.deletes.delete_dataset", "DELETE_JOB_TIMEOUT", "delete-dataset")
REMOVE_FILES = JobKind("app.jobs.deletes.remove_files", "DELETE_JOB_TIMEOUT", "remove-files")
EVALUATE = JobKind("app.jobs.evaluations.evaluate_model", "EVALUATE_JOB_TIMEOUT", "evaluate")
WEBHOOK_QUEUE = "-webhooks"  # short jobs, taken before the main queue's (worker.py)
WEBHOOK_EVENT = JobKind("app.jobs.webhooks.dispatch_event", "WEBHOOK_JOB_TIMEOUT", "webhook-event", queue=WEBHOOK_QUEUE)
WEBHOOK_DELIVER = JobKind("app.jobs.webhooks.deliver", "WEBHOOK_JOB_TIMEOUT", "webhook", queue=WEBHOOK_QUEUE)
KINDS = (TRAIN, HEALTH, SUGGEST, NETWORK, IMPORT, LABELS, DELETE_DATASET, REMOVE_FILES, EVALUATE, WEBHOOK_EVENT,
         WEBHOOK_DELIVER)

# RQ statuses: a job in one of these will still run (or is running); the others never will.
LIVE_JOB_STATUSES = ("queued", "started", "deferred", "scheduled")
DEAD_JOB_STATUSES = (None, "failed", "stopped", "canceled")


def new_job_id(kind: JobKind, object_id: int | str) -> str:
    """A fresh, readable job id such as 'train-12-1a2b3c4d'."""
    return f"{kind.prefix}-{object_id}-{uuid.uuid4().hex[:8]}"


def enqueue(kind: JobKind, *ids: int | str, job_id: str | None = None, description: str | None = None,
            retry: Retry | None = None) -> Job:
    """Queue kind's task with ids as its arguments; timeout and result lifetime from the config; `retry`:
    RQ runs it again when it raises (after the intervals, through the worker's scheduler)."""
    cfg = current_app.config
    job_id = job_id or new_job_id(kind, ids[0] if ids else 0)
    return get_queue(kind.queue).enqueue(
        kind.func, *ids, job_id=job_id, job_timeout=cfg[kind.timeout_key],
        result_ttl=cfg[kind.result_ttl_key], failure_ttl=cfg[kind.result_ttl_key],
        description=description or f"{kind.prefix} {' '.join(str(i) for i in ids)}", retry=retry,
    )


def job_status(job_id: str | None) -> str | None:
    """RQ status of a job ('queued', 'started', 'finished', 'failed'...), None when it does not exist."""
    if not job_id:
        return None
    try:
        status = Job.fetch(job_id, connection=get_redis()).get_status(refresh=False)
    except NoSuchJobError:
        return None
    return str(getattr(status, "value", status) or "")  # JobStatus is a str Enum: str() gives 'JobStatus.X'


def job_alive(job_id: str | None) -> bool:
    """True while the job is waiting or running."""
    return job_status(job_id) in LIVE_JOB_STATUSES


def queue_position(job_id: str | None) -> int | None:
    """1-based position of a job in the queue, None when it is not waiting there."""
    if not job_id:
        return None
    position = get_queue().get_job_position(job_id)
    return position + 1 if position is not None else None


def remove_job(job_id: str | None) -> None:
    """Take a job off the queue and delete it; a job that is already gone is fine."""
    if not job_id:
        return
    try:
        job = Job.fetch(job_id, connection=get_redis())
    except NoSuchJobError:
        return
    try:
        job.cancel()
    except Exception:  # already started/finished: deleting is enough, the task re-checks its row
        log.debug("cancel of job %s refused; deleting it", job_id)
    job.delete()
