"""Database connection settings and retrying writes that meet a busy database.

SQLite is the default install's database, so it is set up as a real one on every connection: WAL
journal (readers never wait for a writer, a writer never waits for readers), a busy timeout (a second
writer waits instead of failing at once), synchronous=NORMAL (safe with WAL, far fewer fsyncs) and
foreign keys on (ON DELETE CASCADE / SET NULL are enforced as on PostgreSQL). PostgreSQL needs none of it.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from flask import Flask
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError

from app.extensions import db

log = logging.getLogger(__name__)
T = TypeVar("T")


def sqlite_pragmas(busy_timeout_s: float) -> list[str]:
    """The PRAGMAs run on every new SQLite connection."""
    return ["PRAGMA journal_mode=WAL", f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}",
            "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"]


def init_database(app: Flask) -> None:
    """Register the SQLite connection settings on the app's engine (nothing happens for PostgreSQL)."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        return
    pragmas = sqlite_pragmas(app.config["SQLITE_BUSY_TIMEOUT"])

    @event.listens_for(engine, "connect")
    def set_sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()


def is_transient(exc: BaseException) -> bool:
    """A database error worth trying again: SQLite busy/locked, a dropped or refused connection."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig if exc.orig is not None else exc).lower()
    return any(word in text for word in ("locked", "busy", "connection", "server closed", "terminating",
                                         "could not connect", "timeout", "timed out"))


def retry_write(write: Callable[[], T], budget_s: float, what: str = "database write",
                on_wait: Callable[[], None] | None = None) -> T:
    """Run `write` (which applies its changes and commits) until it succeeds, retrying transient errors
    with exponential backoff for up to `budget_s` seconds; the session is rolled back between tries, so
    `write` must apply its changes again each time. Other errors, and the last one, are raised."""
    deadline = time.monotonic() + budget_s
    delay, attempt = 0.1, 0
    while True:
        attempt += 1
        try:
            return write()
        except DBAPIError as exc:  # OperationalError (locked, connection lost) among them
            db.session.rollback()
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s: database busy or unreachable (try %d), retrying in %.1fs: %s",
                        what, attempt, delay, str(exc.orig or exc).splitlines()[0][:200])
        if on_wait is not None:
            on_wait()
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
