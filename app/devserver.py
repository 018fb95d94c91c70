"""`make run`: the web server, one worker and a webhook-delivery worker together, on the embedded Redis unless REDIS_URL is set.

Ctrl-C stops both (and the embedded Redis), leaving nothing running.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(args, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + 20
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    from app import create_app
    from app.redis_server import ensure_embedded_redis, stop_embedded_redis

    app = create_app()
    embedded = bool(app.config.get("EMBEDDED_REDIS"))
    if embedded:
        ensure_embedded_redis(app.instance_path)
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "5000")
    py = sys.executable
    procs = [
        _spawn([py, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", "2", "--threads", "4",
                "--timeout", "300", "--access-logfile", "-", "wsgi:app"]),
        _spawn([py, "worker.py"]),
        # webhook deliveries get their own light worker: they never wait behind a training run
        _spawn([py, "worker.py", "--webhooks-only"]),
    ]
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    time.sleep(1.5)
    print(f"\n  Studio is running: http://{host}:{port}/   (Ctrl-C stops the web server and the worker)\n", flush=True)
    while not stopping and all(p.poll() is None for p in procs):
        time.sleep(0.3)
    print("\nStopping…", flush=True)
    _stop(procs)
    if embedded:
        stop_embedded_redis(app.instance_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
