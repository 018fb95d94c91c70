"""bench/evaluate.py, part 2: the database side of "Evaluate on a dataset" at 200,000 images (SQLite by default).

One throw-away site: a dataset of `images` rows written with SQLAlchemy Core (10 classes, a twentieth of
them unlabeled), and a model "trained" on its first half (run_samples: 70% train, 15% val, 15% test, so
85,000 of the 200,000 are left out as learned): the case of a model evaluated on its own dataset after new
images were added, where the learned-images condition has the most to do. Measured through the app: the
start request (POST /models/<id>/evaluations: plans the evaluation and queues the job; the job is never
run) beside the plain labeling-grid page, interleaved, medians; then the job's own queries, page by page
(evaluation_job.pages), each page's time beside the same grid page; then the job's exact plan (plan_for: the
grouped count and the count of learned images), median. BENCH_EVAL_DATABASE_URL: an empty
PostgreSQL database to use instead (its tables are dropped and made again).
"""
from __future__ import annotations

import importlib
import shutil
import statistics
import tempfile
import time

from bench._synthetic import CHUNK, make_dataset

REPEATS = 7


def fill_images(dataset_id: int, count: int) -> None:
    """`count` image rows with sha256-like content keys (random, as real ones), one in 20 unlabeled."""
    import hashlib

    from sqlalchemy import select

    from app.extensions import db
    from app.models import Image, Label

    label_ids = list(db.session.scalars(select(Label.id).where(Label.dataset_id == dataset_id)))
    for first in range(0, count, CHUNK):
        db.session.execute(Image.__table__.insert(), [
            {"dataset_id": dataset_id, "sha256": hashlib.sha256(b"%d-%d" % (dataset_id, i)).hexdigest(),
             "label_id": None if i % 20 == 19 else label_ids[i % len(label_ids)], "filename": f"img{i}.jpg",
             "width": 128, "height": 128, "size_bytes": 4000, "format": "JPEG"}
            for i in range(first, min(count, first + CHUNK))])
        db.session.commit()


def _learned_half(run_id: int, dataset_id: int, count: int) -> None:
    """run_samples for the dataset's first `count` images, as a run that trained on them would hold."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Image, RunSample

    rows = db.session.execute(select(Image.id, Image.sha256, Image.label_id).where(Image.dataset_id == dataset_id)
                              .order_by(Image.id).limit(count)).all()
    parts = ["train"] * 14 + ["val"] * 3 + ["test"] * 3
    for first in range(0, len(rows), CHUNK):
        db.session.execute(RunSample.__table__.insert(), [
            {"run_id": run_id, "position": i, "image_id": image_id, "class_index": 0, "sha256": sha,
             "part": parts[i % len(parts)]} for i, (image_id, sha, _) in enumerate(rows[first:first + CHUNK], first)])
        db.session.commit()


def prepare(images: int, database_url: str | None = None):
    """(app, client, dataset id, run id, folder) of a throw-away site with `images` rows."""
    from app import create_app
    from app.extensions import db
    from app.models import TrainingRun

    folder = tempfile.mkdtemp(prefix="bench-evaluate-")
    app = create_app({"INSTANCE_PATH": folder, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{folder}/studio.sqlite3",
                      "STORAGE_DIR": f"{folder}/storage", "RQ_QUEUE": "bench-evaluate", "LOG_LEVEL": "WARNING"})
    with app.app_context():
        db.drop_all()
        db.create_all()
        user, dataset = make_dataset()
        fill_images(dataset.id, images)
        run = TrainingRun(dataset_id=dataset.id, created_by_id=user.id, name="bench", architecture="efficientnet_lite0",
                          mode="quick", status="succeeded", classes=[f"class{i}" for i in range(10)],
                          artifact_dir="bench")
        db.session.add(run)
        db.session.commit()
        _learned_half(run.id, dataset.id, images // 2)
        if db.engine.dialect.name == "postgresql":  # as autovacuum would have by then: plans from real statistics
            db.session.execute(db.text("ANALYZE images; ANALYZE run_samples"))
            db.session.commit()
        ids = dataset.id, run.id
        db.session.remove()
    client = app.test_client()
    client.post("/login", data={"username": "bench", "password": "correct horse battery"})
    return app, client, ids[0], ids[1], folder


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def _page_times(app, run_id: int) -> tuple[list[float], int]:
    """ms per page of the job's paging over the latest evaluation, and the images it yielded."""
    from sqlalchemy import select

    from app.blueprints.training.evaluation_job import pages
    from app.blueprints.training.evaluations import plan_for
    from app.extensions import db
    importlib.import_module("app.ml.embeddings")  # torch: imported before the clock, as a worker has it
    from app.models import Evaluation, TrainingRun

    with app.app_context():
        evaluation = db.session.scalars(select(Evaluation).order_by(Evaluation.id.desc()).limit(1)).one()
        plan = plan_for(db.session.get(TrainingRun, run_id), evaluation.dataset_id)
        times, seen, walk = [], 0, pages(evaluation, plan)
        while True:
            started = time.perf_counter()
            page = next(walk, None)
            times.append((time.perf_counter() - started) * 1000)
            if page is None:
                break
            seen += len(page[0].paths)
        db.session.remove()
    assert seen == plan.counts["evaluated"], (seen, plan.counts)
    return times, seen


def _plan_times(app, run_id: int, dataset_id: int) -> list[float]:
    """ms of the job's own plan (plan_for, exact: the grouped count and the count of learned images)."""
    from app.blueprints.training.evaluations import plan_for
    from app.extensions import db
    from app.models import TrainingRun

    with app.app_context():
        run = db.session.get(TrainingRun, run_id)
        times = [_timed(lambda: plan_for(run, dataset_id)) for _ in range(REPEATS)]
        db.session.remove()
    return times


def measure(images: int = 200_000, database_url: str | None = None) -> dict:
    """Start request, grid page and per-page query times (ms) at `images` rows."""
    from app.redis_server import stop_embedded_redis

    app, client, dataset_id, run_id, folder = prepare(images, database_url)
    try:
        def start():
            response = client.post(f"/models/{run_id}/evaluations", data={"dataset_id": str(dataset_id)})
            assert response.status_code == 302, response.status_code

        def grid():
            assert client.get(f"/datasets/{dataset_id}/label?filter=all",
                              headers={"HX-Request": "true"}).status_code == 200

        start(), grid()  # warm
        starts, grids = [], []
        for _ in range(REPEATS):
            starts.append(_timed(start))
            grids.append(_timed(grid))
        pages, evaluated = _page_times(app, run_id)
        plans = _plan_times(app, run_id, dataset_id)
    finally:
        stop_embedded_redis(folder)
        shutil.rmtree(folder, ignore_errors=True)
    first, rest = pages[0], pages[1:-1] or pages[:1]
    return {"images": images, "evaluated": evaluated, "start_ms": statistics.median(starts), "start_all": starts,
            "grid_ms": statistics.median(grids), "first_page_ms": first, "page_ms": statistics.median(rest),
            "page_max_ms": max(rest), "pages": len(pages) - 1, "pages_total_ms": sum(pages),
            "per_2048_ms": sum(pages) / evaluated * 2048, "page_list": pages, "plan_ms": statistics.median(plans)}
