"""Several workers on one queue: each job (and each training run) runs exactly once."""
from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter

import pytest
from rq import Worker
from rq.job import Job

from app.extensions import db, get_queue, get_redis
from tests.ops.conftest import ROOT, child_env, wait_until
from tests.ops.jobs import record_run
from tests.training.conftest import TINY, make_dataset, start_run  # noqa: F401  (fixtures)


def start_workers(app, count: int, tmp_path) -> list[subprocess.Popen]:
    """`python worker.py` processes (not burst: all are up before any job is queued)."""
    procs = []
    for i in range(count):
        with open(tmp_path / f"worker{i}.log", "wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "worker.py", "--name", f"ops-worker-{i}-{tmp_path.name[-6:]}"],
                cwd=ROOT, env=child_env(app, WORKER_CLASS="fork"), stdout=log, stderr=subprocess.STDOUT,
            ))
    try:
        wait_until(lambda: len(Worker.all(queue=get_queue())) == count or _died(procs, tmp_path), timeout=90)
    except BaseException:
        stop_workers(procs)
        raise
    return procs


def _died(procs, tmp_path) -> bool:
    for i, proc in enumerate(procs):
        assert proc.poll() is None, (tmp_path / f"worker{i}.log").read_text()
    return False


def stop_workers(procs: list[subprocess.Popen]) -> list[int]:
    """SIGTERM = RQ's warm shutdown (finish the current job, then exit)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=30))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    return codes


@pytest.mark.slow
def test_two_workers_run_each_job_and_each_training_run_once(app, tmp_path, logged_in, make_dataset,  # noqa: F811
                                                              start_run):  # noqa: F811
    """Plain jobs and training runs queued before two workers start (one pair of workers for both:
    each start-up imports PyTorch)."""
    from app.models import TrainingRun

    dataset = make_dataset(logged_in.user, {"red": 6, "blue": 6})
    for i in range(3):
        assert start_run(dataset.id, name=f"run{i}", epochs="1").status_code in (302, 303)
    runs = db.session.query(TrainingRun).order_by(TrainingRun.id).all()
    assert [r.status for r in runs] == ["queued"] * 3
    queue = get_queue()
    jobs = [queue.enqueue(record_run, f"job{i}", 1.0, job_timeout=60, result_ttl=300) for i in range(3)]
    db.session.rollback()  # hold no read locks while the workers write
    workers = start_workers(app, 2, tmp_path)
    try:
        def finished():
            statuses = [r.status for r in db.session.query(TrainingRun)]
            db.session.rollback()  # end the read: never hold a transaction open while workers write
            return (all(s in ("succeeded", "failed", "cancelled") for s in statuses)
                    and all(j.get_status(refresh=True) in ("finished", "failed") for j in jobs))

        wait_until(finished, timeout=150, interval=0.5)
    finally:
        codes = stop_workers(workers)
    assert codes == [0, 0]
    assert [j.get_status(refresh=True) for j in jobs] == ["finished"] * 3
    recorded = [r.decode() for r in get_redis().lrange(f"ops-test-runs:{queue.name}", 0, -1)]
    assert Counter(r.split(":")[0] for r in recorded) == Counter({"job0": 1, "job1": 1, "job2": 1}), recorded
    db.session.expire_all()
    runs = db.session.query(TrainingRun).order_by(TrainingRun.id).all()
    assert [r.status for r in runs] == ["succeeded"] * 3, [(r.status, r.error) for r in runs]
    assert all(Job.fetch(r.job_id, connection=get_redis()).get_status() == "finished" for r in runs)
    # Each run was claimed once: one worker name per run, and each job succeeded exactly once.
    assert all(r.worker_name for r in runs)
    logs = "".join((tmp_path / f"worker{i}.log").read_text() for i in range(2))
    for run in runs:
        assert logs.count(f"train run={run.id} job={run.job_id}: queued -> running") == 1, logs[-3000:]
    takers = {r.split(":", 1)[1] for r in recorded} | {r.worker_name for r in runs}
    assert len(takers) == 2, f"both workers should have taken work: {takers}"


def test_the_webhooks_only_worker_takes_deliveries_and_leaves_training_jobs(app, tmp_path):
    """`make run` and the compose file start one beside the training worker: a delivery never waits
    behind a training run."""
    from app.jobs import WEBHOOK_QUEUE

    with app.app_context():
        delivery = get_queue(WEBHOOK_QUEUE).enqueue(record_run, "delivery", job_timeout=60, result_ttl=300)
        training = get_queue().enqueue(record_run, "training", job_timeout=60, result_ttl=300)
        done = subprocess.run([sys.executable, "worker.py", "--webhooks-only", "--burst"], cwd=ROOT,
                              env=child_env(app), capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert b"preloaded the ML libraries" not in done.stderr  # a light process: no torch
        delivery.refresh()
        training.refresh()
        assert (delivery.get_status(), training.get_status()) == ("finished", "queued")
        training.cancel()
