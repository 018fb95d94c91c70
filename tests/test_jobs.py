"""The whole job path: enqueue through the app, a real worker process on real Redis, result read back."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rq.job import Job

from app.extensions import get_queue, get_redis
from app.jobs.ping import ping
from tests.conftest import child_env

ROOT = Path(__file__).resolve().parents[1]


def worker_env(app) -> dict:
    return child_env(app)


@pytest.mark.slow
def test_job_runs_in_a_real_worker_process(app, make_user):
    make_user("alice")
    job = get_queue().enqueue(ping, "hello", job_timeout=60, result_ttl=300)
    done = subprocess.run(
        # a job without ML: the worker need not import PyTorch first (~5 s)
        [sys.executable, "worker.py", "--burst"], cwd=ROOT, env={**worker_env(app), "WORKER_PRELOAD_ML": "0"},
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    job = Job.fetch(job.id, connection=get_redis())
    assert job.get_status() == "finished", done.stderr
    assert job.return_value() == {"echo": "hello", "users": 1, "queue": app.config["RQ_QUEUE"]}
