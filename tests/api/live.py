"""A live studio for the API tests: gunicorn (and, when asked, an RQ worker) on loopback, on its own
instance folder (SQLite, embedded Redis), as tests/e2e/conftest.py starts one for the browser tests."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.conftest import stop_processes

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(instance: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "STORAGE_DIR")}
    env.update({"INSTANCE_PATH": str(instance), "FLASK_APP": "app", "SECRET_KEY": "api-tests-secret",
                "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    if os.environ.get("TEST_REDIS_URL"):  # CI's second pass: the real Redis, a queue of our own
        env.update(REDIS_URL=os.environ["TEST_REDIS_URL"], RQ_QUEUE=f"api-{instance.parent.name}")
    return env


def seed(instance: Path, username: str, artifacts: Path | None = None) -> dict:
    """Run tests/api/live_setup.py in the server's environment; its JSON (token, ids)."""
    args = [sys.executable, "-m", "tests.api.live_setup", username] + (["--artifacts", str(artifacts)] if artifacts else [])
    done = subprocess.run(args, cwd=ROOT, env=server_env(instance), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def live_studio(instance: Path, worker: bool):
    """Yield the base URL of gunicorn (+ a worker) on a fresh instance; stop everything afterwards."""
    env = server_env(instance)
    instance.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    port = _free_port()
    log = open(instance / "server.log", "w")
    procs = [subprocess.Popen([sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "4",
                               # the fuzzer's URLs may be long: the app's answer is under test, not gunicorn's
                               # request-line limit (a front proxy has its own)
                               "--limit-request-line", "0", "wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)]
    if worker:
        procs.append(subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log,
                                      stderr=subprocess.STDOUT))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, instance)
        yield url
    finally:
        stop_processes(procs)
        log.close()
        if not os.environ.get("TEST_REDIS_URL"):
            from app.redis_server import stop_embedded_redis

            stop_embedded_redis(str(instance))


def _wait_until_up(url: str, instance: Path, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if requests.get(url + "/api/openapi.json", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError("the app did not start; see " + str(instance / "server.log"))
