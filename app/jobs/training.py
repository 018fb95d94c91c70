"""Training job: the RQ task that trains one run, a thin adapter around the training lifecycle service."""
from __future__ import annotations

import logging

from rq import get_current_job

from app.blueprints.training import lifecycle, scheduling
from app.jobs.context import with_app_context

log = logging.getLogger(__name__)


@with_app_context
def train_run(run_id: int) -> dict:
    """RQ task: train the queued run that is fairest next (usually `run_id`, the run it was queued for;
    see training/scheduling.py) and store its results. Re-raises failures so RQ records them."""
    from app.ml import engine
    from app.ml.errors import TrainingCancelled
    from app.ml.progress import Hooks

    job = get_current_job()
    job_id = getattr(job, "id", None)
    run = scheduling.claim_fair(run_id, job_id, getattr(job, "worker_name", None))  # maybe another user's run
    if run is None:
        log.info("train run=%s job=%s: no queued run left, skipping", run_id, job_id)
        return {"run_id": run_id, "status": "skipped"}
    run_id = run.id
    log.info("train run=%s job=%s: queued -> running", run_id, job_id)
    reporter = lifecycle.RunReporter(run)
    with lifecycle.heartbeat(run_id):
        try:
            lifecycle.prepare_samples(run, reporter)
            inputs, options, out_dir, setup = lifecycle.train_arguments(run)
            result = engine.train(inputs, options, out_dir, Hooks(reporter, reporter.should_cancel), setup)
        except TrainingCancelled:
            lifecycle.finish_cancelled(run, reporter)
            status = "cancelled"
        except Exception as exc:
            log.exception("train run=%s job=%s: failed", run_id, job_id)
            lifecycle.finish_failed(run, exc)
            log.info("train run=%s job=%s: running -> %s", run_id, job_id, "failed")
            raise
        else:
            lifecycle.finish_succeeded(run, result, out_dir)
            status = "succeeded"
    log.info("train run=%s job=%s: running -> %s", run_id, job_id, status)
    return {"run_id": run_id, "status": status}
