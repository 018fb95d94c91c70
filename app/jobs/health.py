"""The RQ task behind "Check dataset health": compute the report, store it (a thin adapter around the
datasets health service; the state document carries the job id)."""
from __future__ import annotations

import logging

from app.blueprints.datasets.health import services
from app.jobs.context import with_app_context

log = logging.getLogger(__name__)


@with_app_context
def check_dataset_health(dataset_id: int) -> dict:
    """RQ task: compute and store the dataset's health report. Failures are recorded, logged, re-raised."""
    from app.blueprints.datasets.health.checks import check_dataset  # torch: only in the job process

    log.info("health dataset=%s: started", dataset_id)
    try:
        report = check_dataset(dataset_id, services.Progress(dataset_id))
    except Exception as exc:
        services.record_failure(dataset_id, exc)
        log.exception("health dataset=%s: failed", dataset_id)
        raise
    services.store_report(dataset_id, report)
    log.info("health dataset=%s: %d findings", dataset_id, len(report["findings"]))
    return {"dataset_id": dataset_id, "findings": len(report["findings"])}
