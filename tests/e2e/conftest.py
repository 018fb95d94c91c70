"""Browser tests: the real app (gunicorn + an RQ worker) on loopback, driven by Playwright in Chromium.

Skipped, with a clear reason, when /usr/bin/chromium is missing (`.ci/run` installs it).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)
            if not os.path.exists(CHROMIUM):
                item.add_marker(pytest.mark.skip(reason=f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """gunicorn + one worker on a fresh instance folder (SQLite, embedded Redis); yields the base URL."""
    instance = tmp_path_factory.mktemp("e2e") / "instance"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "STORAGE_DIR")}
    env.update({"INSTANCE_PATH": str(instance), "FLASK_APP": "app", "SECRET_KEY": "e2e-secret",
                "OMP_NUM_THREADS": "1"})
    if os.environ.get("TEST_REDIS_URL"):
        env["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    py = sys.executable
    subprocess.run([py, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    port = _free_port()
    log = open(instance / "server.log", "w")
    procs = [
        subprocess.Popen([py, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "8", "wsgi:app"],
                         cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT),
        subprocess.Popen([py, "worker.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT),
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, instance)
        yield url
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    from app.redis_server import stop_embedded_redis

    stop_embedded_redis(str(instance))


def _wait_until_up(url: str, instance: Path, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if requests.get(url + "/login", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError("the app did not start; see " + str(instance / "server.log"))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shoot():
    """shoot(page, name): save a screenshot under tests/e2e/screenshots/ (not committed)."""
    SHOTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
