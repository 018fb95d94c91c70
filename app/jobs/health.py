"""Dataset health jobs: the RQ task (a thin adapter around the datasets health service) and queue helpers."""
from __future__ import annotations

import logging
import uuid

from flask import current_app
from rq.job import Job

from app.extensions import get_queue
from app.jobs.context import with_app_context

log = logging.getLogger(__name__)

JOB_TIMEOUT_S = 2 * 3600
RESULT_TTL_S = 24 * 3600


def new_job_id(dataset_id: int) -> str:
    return f"health-{dataset_id}-{uuid.uuid4().hex[:8]}"


def enqueue_health_check(dataset_id: int, job_id: str) -> Job:
    """Queue check_dataset_health for the dataset under job_id."""
    timeout = current_app.config.get("HEALTH_JOB_TIMEOUT", JOB_TIMEOUT_S)
    return get_queue().enqueue(check_dataset_health, dataset_id, job_id=job_id, job_timeout=timeout,
                               result_ttl=RESULT_TTL_S, failure_ttl=RESULT_TTL_S,
                               description=f"dataset health {dataset_id}")


@with_app_context
def check_dataset_health(dataset_id: int) -> dict:
    """RQ task: compute and store the dataset's health report. Failures are recorded, logged, re-raised."""
    from app.blueprints.datasets.health.services import run_health_check

    log.info("health dataset=%s: started", dataset_id)
    try:
        report = run_health_check(dataset_id)
    except Exception:
        log.exception("health dataset=%s: failed", dataset_id)
        raise
    log.info("health dataset=%s: %d findings", dataset_id, len(report["findings"]))
    return {"dataset_id": dataset_id, "findings": len(report["findings"])}
