"""The RQ task behind "Suggest labels": run a trained model over a dataset's unlabeled images and
store, per image, the suggested class, its probability and the margin to the runner-up (a thin adapter
around the suggestions service, which keeps the state)."""
from __future__ import annotations

import logging
import time

from app.blueprints.datasets.suggestions import services
from app.jobs.context import with_app_context

log = logging.getLogger(__name__)


@with_app_context
def suggest_labels(dataset_id: int, model_id: int, job_id: str) -> dict:
    """RQ task: score the unlabeled images with model `model_id`; re-raises failures for RQ."""
    if not services.claim(dataset_id, job_id):
        return {"status": "skipped"}
    started = time.perf_counter()
    try:
        scores, image_ids = services.score_unlabeled(dataset_id, model_id, job_id)
    except Exception as exc:
        log.exception("suggest dataset=%s model=%s job=%s failed", dataset_id, model_id, job_id)
        services.record_failure(dataset_id, job_id, exc)
        raise
    count = services.store_suggestions(dataset_id, job_id, scores, image_ids,
                                       seconds=round(time.perf_counter() - started, 2))
    log.info("suggest dataset=%s model=%s: %d suggestions (%s)", dataset_id, model_id, count, scores.method)
    return {"status": "done", "count": count}
