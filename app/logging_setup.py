"""Logging: one stderr handler when nothing else configured logging, secrets redacted, job events.

Gunicorn and `make run` do not configure the root logger, so without this the `app.request` lines
(INFO) would be dropped. worker.py and pytest configure logging themselves; then we only set levels.
"""
from __future__ import annotations

import logging
import re
import sys

from flask import Flask

HANDLER_NAME = "studio-stderr"
FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"

# user:password@ in URLs, and key=value / "key": "value" pairs whose key names a secret.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)
_SECRET_PAIR = re.compile(
    r"(?P<key>\b[\w-]*(?:password|passwd|secret|token|api_key|authorization)[\w-]*['\"]?\s*[=:]\s*['\"]?)"
    r"(?P<value>[^\s'\",&]+)",
    re.IGNORECASE,
)
# A password reset link's token travels in its path (app/blueprints/auth/reset_links.py).
_RESET_LINK = re.compile(r"(?P<head>/reset-password/)[^\s?#/]+")
_SECRET_FIELD = re.compile(r"password|passwd|secret|token|api_key|authorization", re.IGNORECASE)
_known_secrets: set[str] = set()


def redact(text: str) -> str:
    """Hide URL passwords, `password=...`-style values, reset link tokens and known secret values in a log
    line."""
    text = _URL_PASSWORD.sub(r"\g<head>***@", text)
    text = _SECRET_PAIR.sub(r"\g<key>***", text)
    text = _RESET_LINK.sub(r"\g<head>***", text)
    for secret in _known_secrets:
        text = text.replace(secret, "***")
    return text


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message and traceback) goes through `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def init_logging(app: Flask) -> None:
    """Make INFO lines of the app reach stderr with secrets redacted; idempotent across apps."""
    level = logging.getLevelName(str(app.config.get("LOG_LEVEL", "INFO")).upper())
    if not isinstance(level, int):
        level = logging.INFO
    secret = app.config.get("SECRET_KEY")
    if secret and len(secret) >= 8:
        _known_secrets.add(secret)
    root = logging.getLogger()
    logging.getLogger("app").setLevel(level)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(HANDLER_NAME)
        root.addHandler(handler)
        root.setLevel(level)
    for handler in root.handlers:
        # Plain stream handlers (ours, worker.py's basicConfig) get redaction; leave test/capture handlers.
        if type(handler) is logging.StreamHandler and not isinstance(handler.formatter, RedactingFormatter):
            fmt = handler.formatter._fmt if handler.formatter else FORMAT
            handler.setFormatter(RedactingFormatter(fmt))


def log_job_event(run_id: int | None, state: str, job_id: str | None = None, **fields) -> None:
    """One log line per job state change, e.g. `log_job_event(run.id, "running", job_id=job.id)`.

    Field values whose name looks secret (password, token, ...) are never written.
    """
    parts = [f"run={run_id}", f"state={state}"]
    if job_id:
        parts.append(f"job={job_id}")
    for key, value in sorted(fields.items()):
        parts.append(f"{key}={'***' if _SECRET_FIELD.search(key) else value}")
    logging.getLogger("app.jobs").info("job %s", " ".join(parts))
