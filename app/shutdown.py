"""Controlled shutdown of the web server (POST /admin/shutdown and `flask shutdown`).

Under gunicorn the master gets SIGTERM: it closes the listening socket, lets each worker finish the
requests it is serving (up to `graceful_timeout`) and exits 0. Any other server gets a signal to its
own process. Queued jobs live in Redis and are untouched; workers are separate processes.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Set by gunicorn.conf.py in the master before it forks workers, so workers inherit it.
MASTER_ENV = "STUDIO_GUNICORN_MASTER_PID"
_stopping = threading.Event()


def is_shutting_down() -> bool:
    """True once this process has asked its server to stop; new requests then get a 503."""
    return _stopping.is_set()


def shutdown_target(environ: dict) -> tuple[int, int]:
    """The (pid, signal) that stops the server this request is served by."""
    software = str(environ.get("SERVER_SOFTWARE", "")).lower()
    marker = os.environ.get(MASTER_ENV)
    if software.startswith("gunicorn") or (marker and marker == str(os.getppid())):
        # A gunicorn worker is always forked directly by the master (the arbiter).
        return os.getppid(), signal.SIGTERM
    if software.startswith("werkzeug"):
        return os.getpid(), signal.SIGINT  # the dev server exits cleanly on Ctrl-C
    return os.getpid(), signal.SIGTERM


def request_shutdown(environ: dict, delay: float = 0.5) -> int:
    """Stop taking requests here and signal the server after `delay` (the reply goes out first)."""
    pid, signum = shutdown_target(environ)
    _stopping.set()
    log.warning("shutdown requested: sending %s to pid %s in %.1fs", signal.Signals(signum).name, pid, delay)
    timer = threading.Timer(delay, os.kill, args=(pid, signum))
    timer.daemon = True
    timer.start()
    return pid


def read_pid_file(path: str) -> int:
    """The pid in a gunicorn pid file; ValueError with a plain message when it is missing or stale."""
    file = Path(path)
    if not file.exists():
        raise ValueError(f"No pid file at {path}: is the server running (started with gunicorn.conf.py)?")
    try:
        pid = int(file.read_text().strip())
    except ValueError:
        raise ValueError(f"The pid file {path} does not hold a process id.") from None
    if not process_alive(pid):
        raise ValueError(f"The pid file {path} names process {pid}, which is not running.")
    return pid


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (and we may signal it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # An exited child that its parent has not reaped yet still answers kill(pid, 0).
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def stop_process(pid: int, wait: float = 0.0) -> bool:
    """SIGTERM `pid` (a gunicorn master stops gracefully); optionally wait for it; True if gone."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return not process_alive(pid)
