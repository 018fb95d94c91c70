"""The RQ tasks behind deletes in the background: a whole dataset, and the stored files of deleted
images (thin adapters around the deletion services)."""
from __future__ import annotations

import logging

from app.blueprints.datasets import deletion
from app.blueprints.datasets.images import removal
from app.jobs.context import with_app_context

log = logging.getLogger(__name__)


@with_app_context
def delete_dataset(dataset_id: int) -> dict:
    """RQ task: remove a dataset marked for deletion and everything in it; re-raises failures for RQ."""
    try:
        return deletion.purge_dataset(dataset_id)
    except Exception:
        log.exception("delete dataset=%s: failed (the reaper queues it again)", dataset_id)
        raise


@with_app_context
def remove_files() -> dict:
    """RQ task: remove the stored files of deleted images that nothing references any more."""
    removed = removal.sweep_pending()
    log.info("removed the files of %d deleted images", removed)
    return {"removed": removed}
