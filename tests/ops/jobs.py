"""A tiny job for the multi-worker tests: records which worker ran it, in Redis."""
from __future__ import annotations

import time

from rq import get_current_job


def record_run(token: str, seconds: float = 0.0) -> str:
    """Append `token:worker` to a list named after the queue, then hold the job for `seconds`."""
    job = get_current_job()
    job.connection.rpush(f"ops-test-runs:{job.origin}", f"{token}:{job.worker_name}")
    time.sleep(seconds)
    return token
