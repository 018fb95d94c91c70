"""Background work on RQ: one way to queue a job, one way to ask how it is doing.

Services queue work with `enqueue(KIND, *ids)`; a kind names its task function by dotted path, so
services never import job modules (job modules import services, never the reverse). Task functions
are thin adapters: load rows by id, call a service or app.ml, store the result.

    service --enqueue(TRAIN, run.id)--> Redis queue --worker--> app.jobs.training.train_run(run_id)
"""
from app.jobs.queue import (
    DEAD_JOB_STATUSES, DELETE_DATASET, EVALUATE, HEALTH, IMPORT, KINDS, LABELS, LIVE_JOB_STATUSES, NETWORK,
    REMOVE_FILES, SUGGEST, TRAIN, WEBHOOK_DELIVER, WEBHOOK_EVENT, WEBHOOK_QUEUE, JobKind, enqueue, job_alive,
    job_status, new_job_id, queue_position, remove_job,
)
from app.jobs.heartbeat import Heartbeat, is_beating
from app.jobs.state import JobState

__all__ = [
    "DEAD_JOB_STATUSES", "DELETE_DATASET", "EVALUATE", "HEALTH", "IMPORT", "KINDS", "LABELS", "LIVE_JOB_STATUSES",
    "NETWORK", "REMOVE_FILES", "SUGGEST", "TRAIN", "WEBHOOK_DELIVER", "WEBHOOK_EVENT", "WEBHOOK_QUEUE", "Heartbeat",
    "JobKind", "JobState", "enqueue", "is_beating",
    "job_alive", "job_status", "new_job_id", "queue_position", "remove_job",
]
