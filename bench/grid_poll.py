"""Benchmark: labeling-grid pages and training-progress polls at 2,000 vs 20,000 images.

Usage: python bench/grid_poll.py [small] [large]   (defaults 2000 and 20000)

Each size gets a fresh SQLite database (the default install's settings) with one dataset of that many
image rows in 10 classes (rows only, written straight into the database: these pages never open image
files) and one running training run queued on all of them. Measured through the app (Flask test client,
logged in), median of REPEATS requests each:
- the grid's first page and its last page (the pager's "Oldest" link, or ?page=N on code without it),
  for all images and for one class;
- the run's progress partial (what the run page polls every second), the run page, the models list,
  and the worker's progress write with a log line (RunReporter.flush, as after each epoch).
The floor of a late page is the first page of the same grid, and the floor of a poll at 20,000 images is
the same poll at 2,000: the rows print each ratio next to its target. Both sites stay open and the
requests being compared are interleaved, so the load of a shared machine falls on both sides alike.
"""
from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import median_ms, row  # noqa: E402
from bench._synthetic import fill_images, make_dataset  # noqa: E402

REPEATS = 21
TRAIN_VALUES = {"epochs": 1, "image_size": 32, "batch_size": 8, "val_fraction": 0.15, "test_fraction": 0.15}


def _last_page_url(client, first_url: str) -> str:
    html = client.get(first_url).get_data(as_text=True)
    oldest = re.search(r'href="([^"]*)"[^>]*>Oldest', html)
    if oldest:
        return oldest.group(1).replace("&amp;", "&")
    pages = int(re.search(r"Page 1 of (\d+)", html).group(1))
    return f"{first_url}&page={pages}"


def _get(client, url: str, **kwargs):
    def call():
        response = client.get(url, **kwargs)
        assert response.status_code == 200, (url, response.status_code)
    return call


def _setup(app, images: int) -> tuple[int, int, int, float]:
    """(dataset id, a class id, running run id, ms to start that run) in a fresh database of `images` rows."""
    from app.blueprints.training import services
    from app.extensions import db
    from app.models import utcnow

    with app.app_context():
        db.create_all()
        user, dataset = make_dataset()
        label_ids = fill_images(dataset.id, images)
        # the first start also imports torch & co and starts the embedded Redis: time the second
        services.start_run(user, dataset.id, "warm-up", "small_cnn", "scratch", TRAIN_VALUES)
        started = time.perf_counter()
        run = services.start_run(user, dataset.id, "bench", "small_cnn", "scratch", TRAIN_VALUES)
        start_ms = (time.perf_counter() - started) * 1000
        run.status, run.started_at, run.heartbeat_at = "running", utcnow(), utcnow()
        run.progress = {"phase": "training", "epoch": 1, "epochs": 1, "fraction": 0.4}
        db.session.commit()
        return dataset.id, label_ids[3], run.id, start_ms


def _flush_ms(app, run_id: int) -> float:
    """The worker's progress write with one new log line (as after every epoch), from one long-lived
    reporter as in a training job (each commit expires the run row; the log line loads it again)."""
    from app.blueprints.training import lifecycle
    from app.extensions import db
    from app.models import TrainingRun

    with app.app_context():
        reporter = lifecycle.RunReporter(db.session.get(TrainingRun, run_id))
        reporter.latest = {"phase": "training", "fraction": 0.5}

        def write():
            reporter.pending_log = ["Epoch 1/1: validation accuracy 50%"]
            reporter.flush()
        return median_ms(write, repeats=REPEATS)[0]


def prepare(images: int) -> dict:
    """A throw-away site with `images` image rows: {"folder", "start_ms", "calls": {figure: callable}}.
    Requests run outside any app context, so each gets its own database session, as in the server."""
    from app import create_app

    folder = tempfile.mkdtemp(prefix="bench-grid-")
    app = create_app({"INSTANCE_PATH": folder, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/studio.sqlite3", "LOG_LEVEL": "WARNING"})
    dataset_id, label_id, run_id, start_ms = _setup(app, images)
    client = app.test_client()
    client.post("/login", data={"username": "bench", "password": "correct horse battery"})
    hx = {"HX-Request": "true"}
    calls = {}
    for name, filter_ in (("all", "all"), ("class", str(label_id))):
        first = f"/datasets/{dataset_id}/label?filter={filter_}"
        calls[f"grid {name} first"] = _get(client, first, headers=hx)
        calls[f"grid {name} last"] = _get(client, _last_page_url(client, first), headers=hx)
    calls["poll"] = _get(client, f"/models/{run_id}/progress", headers=hx)
    calls["run page"] = _get(client, f"/models/{run_id}")
    calls["models list"] = _get(client, "/models")
    return {"folder": folder, "start_ms": start_ms, "calls": calls, "flush": lambda: _flush_ms(app, run_id)}


def _measure(sites: list[dict]) -> dict:
    """{(figure, site index): median ms}; the requests compared with each other are interleaved."""
    found = {}
    for first, last in (("grid all first", "grid all last"), ("grid class first", "grid class last")):
        medians = median_ms(*(site["calls"][n] for site in sites for n in (first, last)), repeats=REPEATS)
        found.update({(first, 0): medians[0], (last, 0): medians[1], (first, 1): medians[2], (last, 1): medians[3]})
    for name in sites[0]["calls"]:
        if (name, 0) not in found:
            found[(name, 0)], found[(name, 1)] = median_ms(sites[0]["calls"][name], sites[1]["calls"][name],
                                                           repeats=REPEATS)
    for i, site in enumerate(sites):  # one long-lived session each: measured one site after the other
        found[("flush", i)] = site["flush"]()
    return found


def run(small: int = 2000, large: int = 20000) -> list[dict]:
    from app.redis_server import stop_embedded_redis

    sizes, sites = (small, large), []
    try:
        sites = [prepare(small), prepare(large)]
        found = _measure(sites)
    finally:
        for site in sites:
            stop_embedded_redis(site["folder"])
    rows = []
    for name in [*sites[0]["calls"], "flush"]:
        rows += [row(f"{name}, ms at {sizes[i]} images", found[(name, i)], "info", True) for i in (0, 1)]
    rows += [row(f"start run (freezes the sample list, once), ms at {sizes[i]} images", sites[i]["start_ms"],
                 "info", True) for i in (0, 1)]
    for name in ("all", "class"):
        for i in (0, 1):
            ratio = found[(f"grid {name} last", i)] / found[(f"grid {name} first", i)]
            rows.append(row(f"grid {name}: last page / first page at {sizes[i]}", ratio, "<= 1.5", ratio <= 1.5))
    for name in ("grid all first", "poll", "run page", "models list", "flush"):
        ratio = found[(name, 1)] / found[(name, 0)]
        rows.append(row(f"{name}: {large} images / {small} images", ratio, "<= 1.5", ratio <= 1.5))
    return rows


if __name__ == "__main__":
    from bench._common import print_table

    sizes = [int(v) for v in sys.argv[1:3]]
    print_table(run(*sizes), "labeling grid and progress poll")
