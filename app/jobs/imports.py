"""The RQ task behind a background import (a zip, many uploaded files): a thin adapter around the
import service, which keeps the progress in the import's row."""
from __future__ import annotations

import logging

from app.blueprints.datasets.images import csv_labels, importer
from app.jobs.context import with_app_context

log = logging.getLogger(__name__)


def _logged(kind: str, work, import_id: int) -> dict:
    """Run one import's work; unexpected failures (recorded by the service) are logged and re-raised so
    RQ records them too."""
    log.info("%s %s: started", kind, import_id)
    try:
        result = work(import_id)
    except Exception:
        log.exception("%s %s: failed", kind, import_id)
        raise
    log.info("%s %s: %s", kind, import_id, result)
    return result


@with_app_context
def run_import(import_id: int) -> dict:
    """RQ task: import the stored upload of one queued import."""
    return _logged("import", importer.run_import, import_id)


@with_app_context
def run_label_import(import_id: int) -> dict:
    """RQ task: label a dataset's images from the stored CSV of one queued 'labels' import."""
    return _logged("labels import", csv_labels.run_label_import, import_id)
