"""A trivial job proving the whole enqueue -> worker -> result path (used by the tests)."""
from __future__ import annotations

from flask import current_app

from app.extensions import db
from app.jobs.context import with_app_context
from app.models import User


@with_app_context
def ping(value: str) -> dict:
    users = db.session.query(User).count()
    return {"echo": value, "users": users, "queue": current_app.config["RQ_QUEUE"]}
