"""The RQ task behind "Evaluate on a dataset": test a trained model on a dataset's labeled images (a thin
adapter around training/evaluation_job.py, which keeps the progress and results in the evaluation's row)."""
from __future__ import annotations

import logging

from rq import get_current_job

from app.blueprints.training import evaluation_job
from app.blueprints.training.evaluations import HEARTBEAT_TTL_S, heartbeat_name
from app.blueprints.webhooks.services import notify as notify_webhooks
from app.jobs.context import with_app_context
from app.jobs.heartbeat import Heartbeat

log = logging.getLogger(__name__)


@with_app_context
def evaluate_model(evaluation_id: int) -> dict:
    """RQ task: run one queued evaluation; failures are recorded, logged and re-raised for RQ."""
    evaluation = evaluation_job.claim(evaluation_id, getattr(get_current_job(), "id", None))
    if evaluation is None:
        log.info("evaluation=%s: not queued any more, skipping", evaluation_id)
        return {"evaluation_id": evaluation_id, "status": "skipped"}
    log.info("evaluation=%s model=%s dataset=%s: started", evaluation_id, evaluation.run_id, evaluation.dataset_id)
    with Heartbeat(heartbeat_name(evaluation_id), HEARTBEAT_TTL_S):
        try:
            result = evaluation_job.run_evaluation(evaluation)
        except evaluation_job.Stopped:
            result = {"status": evaluation_job.finish_stopped(evaluation_id)}
        except Exception as exc:
            log.exception("evaluation=%s: failed", evaluation_id)
            evaluation_job.record_failure(evaluation_id, exc)
            raise
        finally:  # succeeded, cancelled or failed: tell the webhooks that want to know (only queues a job)
            notify_webhooks("evaluation.finished", evaluation_id)
    log.info("evaluation=%s: %s", evaluation_id, result)
    return {"evaluation_id": evaluation_id, **result}
