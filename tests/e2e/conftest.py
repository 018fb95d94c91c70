"""Browser tests: the real app (gunicorn + an RQ worker) on loopback, driven by Playwright in Chromium.

Skipped, with a clear reason, when /usr/bin/chromium is missing (`.ci/run` installs it).
"""
from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import stop_processes

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


SERVER_ENV: dict[str, str] = {}  # the live server's environment (for its CLI: flask create-admin)


def run_server_cli(*args: str) -> str:
    """Run `flask <args>` against the live server's database; returns its output."""
    done = subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=SERVER_ENV, check=True,
                          capture_output=True, text=True)
    return done.stdout


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
                "OMP_NUM_THREADS": "1",
                # every browser test registers its own people from 127.0.0.1: more than the 10 an hour one
                # address may (tests/test_rate_limits.py checks that limit)
                "RATELIMIT_REGISTER": "200 per hour"})
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
    SERVER_ENV.clear()
    SERVER_ENV.update(env)
    try:
        _wait_until_up(url, instance)
        yield url
    finally:
        stop_processes(procs)
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


@dataclass
class Studio:
    """What `trained_studio` set up: an account with a labelled dataset and one model trained on it."""

    base: str
    username: str
    password: str
    dataset_id: int
    run_id: int
    state: dict  # the logged-in browser state (cookies), for browser.new_context(storage_state=...)
    shown_when_finished: str = ""  # the run page's text once the training had finished

    def page(self, browser, width: int = 1280, height: int = 900):
        """A new page logged in as the studio's owner."""
        context = browser.new_context(viewport={"width": width, "height": height}, storage_state=self.state)
        return context.new_page()


def colour_png(colour: tuple[int, int, int], i: int, size: int = 40) -> bytes:
    """A small image of one colour with one pixel set by `i`, so every image has its own hash."""
    from PIL import Image

    img = Image.new("RGB", (size, size), colour)
    img.putpixel((i % size, i // size % size), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def studio_zip(path: Path, per_class: int = 8, loose: int = 3) -> Path:
    """red/ and blue/ folders (two classes) plus `loose` unlabeled images at the top."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, colour in (("red", (210, 40, 40)), ("blue", (40, 60, 210))):
            for i in range(per_class):
                zf.writestr(f"{name}/{name}_{i}.png", colour_png(colour, i))
        for i in range(loose):
            zf.writestr(f"loose_{i}.png", colour_png((120, 120, 120), i))
    return path


def new_dataset(page, base: str, name: str) -> int:
    """Create a dataset through the page as the logged-in user; returns its id."""
    page.goto(base + "/datasets/new")
    page.fill("input[name=name]", name)
    page.click("button:has-text('Create dataset')")
    page.wait_for_url(re.compile(r"/datasets/\d+$"), timeout=10_000)
    return int(page.url.rsplit("/", 1)[1])


@pytest.fixture(scope="session")
def trained_studio(live_server, browser, tmp_path_factory) -> Studio:
    """One account ('studio') with a dataset (8 red, 8 blue, 3 unlabeled) and a Quick model trained on it,
    shared by every browser test that needs a model (training once keeps the suite fast)."""
    from tests.e2e.test_accounts_e2e import register

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    register(page, live_server, "studio")
    dataset_id = new_dataset(page, live_server, "Colours")
    page.set_input_files("input[name=files]", str(studio_zip(tmp_path_factory.mktemp("studio") / "colours.zip")))
    page.click("[data-upload-button]")
    page.wait_for_selector("#imports [data-import-status=finished]", timeout=60_000)
    page.goto(f"{live_server}/datasets/{dataset_id}/train")
    page.fill("input[name=name]", "colours quick")
    page.click("button:has-text('Start training')")
    page.wait_for_url(re.compile(r"/models/\d+$"), timeout=30_000)
    run_id = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector("#run-progress .badge-succeeded", timeout=180_000)
    page.wait_for_selector("#run-results .results-head, #run-headline .results-head", timeout=30_000)
    shown = page.inner_text("main")
    state = context.storage_state()
    context.close()
    return Studio(live_server, "studio", "correct horse", dataset_id, run_id, state, shown)
