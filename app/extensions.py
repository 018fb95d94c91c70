"""Unbound extension objects and the Redis/queue helpers."""
from __future__ import annotations

import redis
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from rq import Queue
from sqlalchemy import MetaData

# Stable constraint names so Alembic migrations work the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MAX_DB_INT = 2**63 - 1  # the largest id a database integer column can hold (PostgreSQL BIGINT, SQLite)

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
# Rate limits (app/rate_limits.py): no default limits, each limited route says its own; counters live in the
# app's Redis. The client address is the connection's (or the trusted proxy's report: TRUSTED_PROXIES).
limiter = Limiter(key_func=get_remote_address)


def get_redis() -> redis.Redis:
    """The app's Redis connection (one client per app, thread-safe pool)."""
    conn = current_app.extensions.get("studio_redis")
    if conn is None:
        if current_app.config.get("EMBEDDED_REDIS"):
            from app.redis_server import ensure_embedded_redis

            ensure_embedded_redis(current_app.instance_path)
        conn = redis.Redis.from_url(current_app.config["REDIS_URL"])
        current_app.extensions["studio_redis"] = conn
    return conn


def get_queue(suffix: str = "") -> Queue:
    """The RQ queue training and other background jobs go to; with a suffix, its sibling queue of that
    name (webhook deliveries: "-webhooks", which workers take first)."""
    return Queue(current_app.config["RQ_QUEUE"] + suffix, connection=get_redis())
