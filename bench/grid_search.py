"""Benchmark: find by file name in the labeling grid at 200,000 images (SQLite, the default install).

Usage: python bench/grid_search.py [images]   (default 200000)

One fresh SQLite database with one dataset of that many image rows in 10 classes, a seventh of them
unlabeled, written straight into the database with SQLAlchemy Core (these pages never open image files),
named like camera and scanner files ("IMG_00042.JPG", "scan-ant-00043.png", ...). Measured through the app
(Flask test client, logged in, htmx partial as the search box asks for it), median of REPEATS requests:
the plain first page of the grid (its floor, the page a search is compared with) and searches that find
many, a few, and nothing (the worst case: every name is read), in all images, in one class and in the
unlabeled. The requests compared are interleaved, so a shared machine's load falls on both alike. Each
row prints the search page's time beside the plain page's and their ratio. Then the class chips: with a
search they count the matches per class (search_counts, one grouped read of the name index), measured
as a query beside the chips' query without a search (class_counts, their floor) and beside the search's
grid page, as ratios. Last, the name index is dropped and the search that finds nothing measured again:
what the same LIKE costs reading the table's rows.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import median_ms, row  # noqa: E402
from bench._synthetic import CHUNK, make_dataset  # noqa: E402

REPEATS = 15
RATIO_TARGET = 2.5  # a search page costs at most this many plain pages (each reads the name index twice)
CHIPS_TARGET = 0.75  # the chips' counts within a search: at most this share of the search's grid page
PREFIXES = ("IMG_", "DSC", "scan-ant-", "scan-bee-", "photo ", "Été-", "wasp_")
SEARCHES = (("many", "img_"), ("a few", "ant-0012"), ("none", "no-such-name"))


def _filename(i: int) -> str:
    return f"{PREFIXES[i % len(PREFIXES)]}{i:05d}.{'JPG' if i % 2 else 'png'}"


def fill(dataset_id: int, count: int) -> list[int]:
    """`count` image rows (every seventh unlabeled), CHUNK per statement; returns the label ids."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Image, Label

    label_ids = list(db.session.scalars(select(Label.id).where(Label.dataset_id == dataset_id)))
    for first in range(0, count, CHUNK):
        rows = [{"dataset_id": dataset_id, "sha256": f"{dataset_id:08x}{i:056x}",
                 "label_id": None if i % 7 == 0 else label_ids[i % len(label_ids)], "filename": _filename(i),
                 "width": 128, "height": 128, "size_bytes": 4000, "format": "JPEG"}
                for i in range(first, min(count, first + CHUNK))]
        db.session.execute(Image.__table__.insert(), rows)
        db.session.commit()
    return label_ids


def _get(client, url: str):
    def call():
        response = client.get(url, headers={"HX-Request": "true"})
        assert response.status_code == 200, (url, response.status_code)
    return call


def prepare(images: int):
    """(client, dataset id, a class id, folder) of a throw-away site with `images` rows."""
    from app import create_app
    from app.extensions import db

    folder = tempfile.mkdtemp(prefix="bench-search-")
    app = create_app({"INSTANCE_PATH": folder, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/studio.sqlite3", "LOG_LEVEL": "WARNING"})
    with app.app_context():
        db.create_all()
        _, dataset = make_dataset()
        label_ids = fill(dataset.id, images)
        dataset_id = dataset.id
        db.session.remove()
    client = app.test_client()
    client.post("/login", data={"username": "bench", "password": "correct horse battery"})
    return client, dataset_id, label_ids[3], folder, app


def _query(app, function, *args):
    def call():
        with app.app_context():
            function(*args)
    return call


def chips(app, client, dataset_id: int, images: int) -> list[dict]:
    """The class chips' counts within each search, beside the chips without a search and the search's page."""
    from app.blueprints.datasets.images.services import search_counts
    from app.blueprints.datasets.services import class_counts

    rows = []
    base = f"/datasets/{dataset_id}/label?filter=all"
    for kind, q in SEARCHES:
        plain, found, page = median_ms(_query(app, class_counts, dataset_id), _query(app, search_counts, dataset_id, q),
                                       _get(client, f"{base}&q={q}"), repeats=REPEATS)
        rows.append(row(f"chips: counts within '{q}' ({kind}), ms at {images}", found, "info", True))
        rows.append(row(f"chips: '{q}' / chips without a search", found / plain, "info", True))
        rows.append(row(f"chips: '{q}' / its grid page", found / page, f"<= {CHIPS_TARGET}", found / page <= CHIPS_TARGET))
    return rows


def run(images: int = 200_000) -> list[dict]:
    from app.redis_server import stop_embedded_redis

    client, dataset_id, label_id, folder, app = prepare(images)
    rows = []
    try:
        for where, filter_ in (("all", "all"), ("one class", str(label_id)), ("unlabeled", "unlabeled")):
            base = f"/datasets/{dataset_id}/label?filter={filter_}"
            calls = [_get(client, base)] + [_get(client, f"{base}&q={q}") for _, q in SEARCHES]
            plain, *found = median_ms(*calls, repeats=REPEATS)
            rows.append(row(f"{where}: plain page, ms at {images} images", plain, "info", True))
            for (kind, q), ms in zip(SEARCHES, found):
                rows.append(row(f"{where}: search finding {kind} ('{q}'), ms", ms, "info", True))
                rows.append(row(f"{where}: search '{q}' / plain page", ms / plain, f"<= {RATIO_TARGET}",
                                ms / plain <= RATIO_TARGET))
        rows += chips(app, client, dataset_id, images)
        rows += _without_index(client, dataset_id, folder, images)
    finally:
        stop_embedded_redis(folder)
    return rows


def _without_index(client, dataset_id: int, folder: str, images: int) -> list[dict]:
    import sqlite3

    with sqlite3.connect(f"{folder}/studio.sqlite3") as conn:
        conn.execute("DROP INDEX ix_images_dataset_label_name")
    base = f"/datasets/{dataset_id}/label?filter=all"
    plain, found = median_ms(_get(client, base), _get(client, f"{base}&q={SEARCHES[-1][1]}"), repeats=REPEATS)
    return [row(f"all: search finding none, no name index, ms at {images}", found, "info", True),
            row("all: that search / plain page, no name index", found / plain, "info", True)]


if __name__ == "__main__":
    from bench._common import print_table

    print_table(run(*[int(v) for v in sys.argv[1:2]]), "labeling grid: find by file name")
