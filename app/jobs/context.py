"""Running a task inside the app: the worker's app context, fresh database connections after a fork."""
from __future__ import annotations

import functools
import os


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
