"""GET /healthz: is the database answering, is Redis answering, how many workers are alive."""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from rq import Worker
from sqlalchemy import text

from app.extensions import db, get_queue, get_redis

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


def check_health() -> dict:
    """Probe database and Redis; never raises. `status` is ok only when both answer."""
    report = {"database": "ok", "redis": "ok", "workers": 0}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as err:  # any driver error means "not answering"
        db.session.rollback()
        log.warning("healthz: database error: %s", type(err).__name__)
        report["database"] = "error"
    try:
        get_redis().ping()
        report["workers"] = len(Worker.all(queue=get_queue()))
    except Exception as err:
        log.warning("healthz: redis error: %s", type(err).__name__)
        report["redis"] = "error"
    report["status"] = "ok" if report["database"] == report["redis"] == "ok" else "degraded"
    report["queue"] = current_app.config["RQ_QUEUE"]
    return report


@bp.route("/healthz")
def healthz():
    report = check_health()
    response = jsonify(report)
    response.status_code = 200 if report["status"] == "ok" else 503
    response.headers["Cache-Control"] = "no-store"
    return response
