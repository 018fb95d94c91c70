"""Fixtures for the webhook tests: a real HTTP receiver on loopback, a small world (a dataset with a run),
and a burst worker on the webhooks queue (real Redis)."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    """An HTTP server thread on 127.0.0.1 (a random port) recording every request it gets. `answers` is
    the list of statuses it gives in turn (the last one repeats); `handler` may replace the answering."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers = [200]
        self.handler = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if receiver.handler is not None:
                    return receiver.handler(self)
                index = min(len(receiver.requests), len(receiver.answers)) - 1
                self.send_response(receiver.answers[index])
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app_config():
    # retries at once (no scheduler pause) so a burst worker runs every attempt; a short timeout
    return {"WEBHOOK_RETRY_INTERVALS": [0], "WEBHOOK_TIMEOUT_S": 2.0, "WEBHOOKS_ALLOW_PRIVATE": True}


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def run_webhook_jobs(app) -> None:
    """Run every queued webhook job (and their immediate retries) in this process."""
    from rq import SimpleWorker

    from app.extensions import get_queue, get_redis
    from app.jobs import WEBHOOK_QUEUE

    SimpleWorker([get_queue(WEBHOOK_QUEUE)], connection=get_redis()).work(burst=True)


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def make_run(app):
    """make_run(owner, status="running") -> a run on a fresh dataset of `owner` (no images needed)."""
    from app.extensions import db
    from app.models import Dataset, TrainingRun, utcnow

    def factory(owner, status: str = "running", dataset=None):
        if dataset is None:
            dataset = Dataset(owner_id=owner.id, name="Colours", description="")
            db.session.add(dataset)
            db.session.flush()
        run = TrainingRun(dataset_id=dataset.id, created_by_id=owner.id, name="m", architecture="small_cnn",
                          mode="scratch", options={"image_size": 32}, status=status, classes=["red", "blue"],
                          snapshot={"total": 1}, started_at=utcnow())
        db.session.add(run)
        db.session.commit()
        return run

    return factory


def wait_for(predicate, seconds: float = 5.0) -> None:
    deadline = time.time() + seconds
    while not predicate() and time.time() < deadline:
        time.sleep(0.02)
