"""Run an RQ worker on the app's Redis (embedded or REDIS_URL).

    python worker.py            # work until stopped (SIGTERM/Ctrl-C: finish the current job, then exit)
    python worker.py --burst    # work until the queue is empty, then exit
    python worker.py --webhooks-only   # only webhook deliveries: they never wait behind a training run

WORKER_CLASS=fork (default on CPU) forks a fresh process per job; WORKER_CLASS=simple runs jobs in
this process — use it on a GPU machine, since CUDA does not survive fork.
"""
from __future__ import annotations

import argparse
import logging
import os

from rq import SimpleWorker, Worker

from app import create_app
from app.extensions import get_queue, get_redis
from app.jobs import WEBHOOK_QUEUE


class ReapStaleRunsMixin:
    """Also fail training runs and imports whose worker died (kill -9, OOM), queue again dataset
    deletions whose job was lost, remove deleted models whose undo window has passed and deleted accounts
    whose datasets are purged: at start-up,
    then with RQ's periodic maintenance (every MAINTENANCE_INTERVAL seconds while idle)."""

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        from flask import current_app

        from app.blueprints.auth.deletion import purge_deleted_accounts
        from app.blueprints.datasets.deletion import requeue_stalled_deletions
        from app.blueprints.datasets.images.imports import reap_stale_imports
        from app.blueprints.datasets.images.removal import schedule_forgotten
        from app.blueprints.datasets.images.undo import expire as expire_undo
        from app.blueprints.training.deletion import purge_deleted_runs
        from app.blueprints.training.lifecycle import reap_stale_runs

        config = current_app.config
        _reap("stale training run(s) marked failed", reap_stale_runs, config["TRAIN_STALE_SECONDS"])
        _reap("stale import(s) marked failed", reap_stale_imports, config["IMPORT_STALE_SECONDS"])
        _reap("dataset deletion(s) queued again", requeue_stalled_deletions)
        _reap("deleted model(s) removed with their files", purge_deleted_runs)
        _reap("sweep of deleted images' files queued again", schedule_forgotten)
        _reap("expired undo action(s) forgotten", expire_undo)
        _reap("deleted account(s) removed", purge_deleted_accounts)


def _reap(what: str, reaper, *args) -> None:
    from app.extensions import db

    try:
        count = reaper(*args)
    except Exception:  # never let bookkeeping stop the worker
        db.session.rollback()
        logging.getLogger(__name__).exception("reaper failed: %s", what)
    else:
        if count:
            logging.getLogger(__name__).warning("%d %s", count, what)


class ReapingWorker(ReapStaleRunsMixin, Worker):
    """Forks a fresh process per job (CPU)."""


class ReapingSimpleWorker(ReapStaleRunsMixin, SimpleWorker):
    """Runs jobs in the worker process (GPU: CUDA does not survive fork)."""


WORKER_CLASSES = {"fork": ReapingWorker, "simple": ReapingSimpleWorker}
MAINTENANCE_INTERVAL = 60


def preload_ml() -> None:
    """Import the ML libraries (torch, torchvision, ONNX Runtime: seconds) once, here, instead of in
    every forked job process: a job then starts training at once. Importing does not touch CUDA, so
    forking afterwards stays safe; no torch thread pool exists before a job runs."""
    import importlib
    import time

    started = time.perf_counter()
    for module in ("app.ml.engine", "app.ml.embeddings", "app.ml.health", "app.ml.suggest", "onnxruntime"):
        importlib.import_module(module)
    logging.getLogger(__name__).info("preloaded the ML libraries in %.1f s", time.perf_counter() - started)


def build_app():
    """The app, once its storage answered: a worker whose STORAGE_URL is wrong, or whose bucket is
    missing or refuses its credentials, stops now with one sentence instead of failing every job."""
    from app.storage import StorageError, check_storage

    try:
        app = create_app()
        check_storage(app)
    except StorageError as err:
        raise SystemExit(f"worker not started: {err}") from None
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: host.pid)")
    parser.add_argument("--webhooks-only", action="store_true",
                        help="take only webhook deliveries (light: no ML libraries, jobs run in this process)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app()
    if args.webhooks_only:
        worker_class = SimpleWorker  # deliveries are short HTTP calls: no fork, no reapers, no torch
    else:
        worker_class = WORKER_CLASSES[os.environ.get("WORKER_CLASS", "fork")]
        if app.config["WORKER_PRELOAD_ML"]:
            preload_ml()
    with app.app_context():
        # Forked job processes inherit this app context; tasks dispose the DB pool they inherit.
        # Webhook deliveries (short) are taken before the next training; the scheduler starts the retries
        # of failed deliveries when their pause is over.
        queues = [get_queue(WEBHOOK_QUEUE)] + ([] if args.webhooks_only else [get_queue()])
        worker = worker_class(queues, connection=get_redis(), name=args.name,
                              maintenance_interval=MAINTENANCE_INTERVAL)
        worker.work(burst=args.burst, logging_level="INFO", with_scheduler=True)


if __name__ == "__main__":
    main()
