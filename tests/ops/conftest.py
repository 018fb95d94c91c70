"""Fixtures for the operations tests: an admin client, child processes, free ports."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import child_env, login  # noqa: F401  (child_env is re-exported for ops tests)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def admin_client(client, make_user):
    """A client logged in as the admin 'root'."""
    client.user = make_user("root", is_admin=True)
    assert login(client, "root").status_code == 302
    return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(app, port: int, log_path: Path, **env) -> subprocess.Popen:
    """gunicorn on 127.0.0.1:port (2 threaded workers, gunicorn.conf.py from the repo root)."""
    args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--threads", "2", "--graceful-timeout", "20", "wsgi:app"]
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, cwd=ROOT, env=child_env(app, **env), stdout=log, stderr=subprocess.STDOUT)


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def page_csrf_token(html: str) -> str:
    match = re.search(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'"X-CSRFToken": "([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)
