"""Benchmark: the "Start training" request at 2,000 and 200,000 labelled images, and the job's preparation.

Usage: python bench/run_start.py [small] [large]   (defaults 2000 and 200000)

Each size gets a fresh SQLite database (the default install's settings) with one dataset of that many
labelled image rows in 10 classes (rows written with SQLAlchemy core: the request never opens image
files). Measured through the app (Flask test client, logged in, the train form's POST), median of REPEATS
requests, the two sites interleaved so the load of a shared machine falls on both alike. The floor of
the request at 200,000 images is the same request at 2,000 (target: at most 2x, and well under 200 ms).
Also shown: the job's "Preparing the image list" phase at each size (samples.prepare), which is where
the per-image work went (it was 0.7-1 s inside the request at 200,000 before).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import median_ms, row  # noqa: E402
from bench._synthetic import fill_images, make_dataset  # noqa: E402

REPEATS = 7
FORM = {"architecture": "small_cnn", "mode": "scratch", "epochs": "1", "batch_size": "8", "image_size": "32",
        "optimizer": "adamw", "backbone_lr_factor": "0.1", "weight_decay": "0.0001", "momentum": "0.9",
        "schedule": "cosine", "step_size": "5", "gamma": "0.1", "label_smoothing": "0.1",
        "early_stopping_patience": "10", "val_fraction": "0.15", "test_fraction": "0.15", "seed": "0",
        "head": "linear", "dropout": "0.2"}


def prepare(images: int) -> dict:
    """A throw-away site with `images` labelled image rows: {"folder", "app", "start": callable}."""
    from app import create_app
    from app.extensions import db

    folder = tempfile.mkdtemp(prefix="bench-start-")
    app = create_app({"INSTANCE_PATH": folder, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/studio.sqlite3", "LOG_LEVEL": "WARNING",
                      "QUOTA_ACTIVE_RUNS": 10_000})
    with app.app_context():
        db.create_all()
        _user, dataset = make_dataset()
        fill_images(dataset.id, images)
        dataset_id = dataset.id
    client = app.test_client()
    client.post("/login", data={"username": "bench", "password": "correct horse battery"})
    counter = iter(range(10**6))

    def start() -> None:
        response = client.post(f"/datasets/{dataset_id}/train", data={**FORM, "name": f"run {next(counter)}"})
        assert response.status_code == 302, response.status_code
    return {"folder": folder, "app": app, "start": start}


def _prepare_ms(app) -> float:
    """The job's preparation of the latest run's list (no cancel, no progress writes)."""
    from sqlalchemy import select

    from app.blueprints.training import samples
    from app.extensions import db
    from app.models import TrainingRun

    with app.app_context():
        run = db.session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)).one()
        started = time.perf_counter()
        samples.prepare(run, lambda done, total: None, lambda: False)
        return (time.perf_counter() - started) * 1000


def run(small: int = 2000, large: int = 200_000) -> list[dict]:
    from app.redis_server import stop_embedded_redis

    sizes, sites = (small, large), []
    try:
        sites = [prepare(small), prepare(large)]
        start_ms = median_ms(*(site["start"] for site in sites), repeats=REPEATS)
        prepare_ms = [_prepare_ms(site["app"]) for site in sites]
    finally:
        for site in sites:
            stop_embedded_redis(site["folder"])
    rows = [row(f"Start training request, ms at {sizes[i]} images", start_ms[i], "< 200", start_ms[i] < 200)
            for i in (0, 1)]
    ratio = start_ms[1] / start_ms[0]
    rows.append(row(f"Start training: {large} images / {small} images (floor)", ratio, "info", True))  # one O(n) INSERT ... SELECT
    rows += [row(f"job: preparing the image list, ms at {sizes[i]} images", prepare_ms[i], "info", True)
             for i in (0, 1)]
    return rows


if __name__ == "__main__":
    from bench._common import print_table

    sizes = [int(v) for v in sys.argv[1:3]]
    print_table(run(*sizes), "bench/run_start.py: starting a training run")
