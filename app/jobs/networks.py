"""The RQ task behind Admin -> Networks: download (or check an uploaded) pretrained weights file and
install it (a thin adapter around the admin networks service, which keeps the state)."""
from __future__ import annotations

import logging

from app.blueprints.admin import networks as services
from app.jobs.context import with_app_context
from app.ml.errors import WeightsError

log = logging.getLogger(__name__)


@with_app_context
def install_network(name: str, job_id: str) -> dict:
    """RQ task: install network `name`'s weights as its entry says; re-raises failures for RQ."""
    entry = services.claim(name, job_id)
    if entry is None:
        return {"status": "skipped"}
    try:
        path = services.install(name, job_id, entry)
    except Exception as exc:
        if isinstance(exc, WeightsError):  # expected (no internet, wrong file): no traceback needed
            log.warning("network %s job=%s: %s", name, job_id, exc)
        else:
            log.exception("network %s job=%s failed", name, job_id)
        services.record_failure(name, job_id, exc)
        raise
    services.record_success(name, job_id)
    log.info("network %s job=%s: installed %s", name, job_id, path.name)
    return {"status": "installed", "file": path.name}
