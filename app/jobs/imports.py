"""The RQ task behind a background import (a zip, many uploaded files): a thin adapter around the
import service, which keeps the progress in the import's row."""
from __future__ import annotations

import logging

from app.blueprints.datasets.images import csv_labels, importer
from app.jobs.context import with_app_context

log = logging.getLogger(__name__)


@with_app_context
def run_import(import_id: int) -> dict:
    """RQ task: import the stored upload of one queued import. Unexpected failures are recorded by the
    service, logged and re-raised so RQ records them too."""
    log.info("import %s: started", import_id)
    try:
        result = importer.run_import(import_id)
    except Exception:
        log.exception("import %s: failed", import_id)
        raise
    log.info("import %s: %s", import_id, result)
    return result


@with_app_context
def run_label_import(import_id: int) -> dict:
    """RQ task: label a dataset's images from the stored CSV of one queued 'labels' import."""
    log.info("labels import %s: started", import_id)
    try:
        result = csv_labels.run_label_import(import_id)
    except Exception:
        log.exception("labels import %s: failed", import_id)
        raise
    log.info("labels import %s: %s", import_id, result)
    return result
