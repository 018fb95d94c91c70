"""RQ task functions: thin adapters that run inside a worker with the app context."""
from __future__ import annotations

import functools
import logging
import os

log = logging.getLogger(__name__)


def with_app_context(func):
    """Run the task inside an app context; build the app only when the worker did not push one."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from flask import current_app, has_app_context

        if has_app_context():
            _fresh_db_connections(current_app)
            return func(*args, **kwargs)
        from app import create_app

        with create_app().app_context():
            return func(*args, **kwargs)

    return wrapper


def _fresh_db_connections(app) -> None:
    """In a forked job process, drop (without closing) the pooled connections inherited from the parent.

    Only after a fork: in the process that built the app (SimpleWorker, tests) the pool is its own.
    """
    from app.extensions import db

    if app.extensions.get("studio_pid", os.getpid()) != os.getpid():
        db.engine.dispose(close=False)
        app.extensions["studio_pid"] = os.getpid()


def job_status(job_id: str | None) -> str | None:
    """RQ status of a job ('queued', 'started', 'finished', 'failed'...), None when it does not exist."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from app.extensions import get_redis

    if not job_id:
        return None
    try:
        status = Job.fetch(job_id, connection=get_redis()).get_status(refresh=False)
    except NoSuchJobError:
        return None
    return str(getattr(status, "value", status) or "")  # JobStatus is a str Enum: str() gives 'JobStatus.X'


DEAD_JOB_STATUSES = (None, "failed", "stopped", "canceled")


@with_app_context
def ping(value: str) -> dict:
    """A trivial job proving the whole enqueue → worker → result path."""
    from flask import current_app

    from app.extensions import db
    from app.models import User

    users = db.session.query(User).count()
    return {"echo": value, "users": users, "queue": current_app.config["RQ_QUEUE"]}
