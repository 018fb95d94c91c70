"""Benchmark: the studio at 2,000 and 20,000 images on the default install (SQLite, embedded Redis).

Usage: python bench/scale.py [--sizes 2000,20000] [--no-train] [--train-image-size N]

For each size, on a fresh instance folder: synthetic 128 px JPEGs in 10 classes are zipped and uploaded
through the real upload route (test client), a real `worker.py` process imports them, and pages are timed
through the test client while the import runs and after it: the dataset page, the labeling grid's first
and last page, the train form; then a quick training run is started from the form and its progress poll
and results page are timed while it trains and after. Each latency is the median of several requests.

The import's floor is the bare intake work on one core (read each entry, hash, decode, make the
thumbnail; no database, no files written), measured in the same run on the same zip. Pages have no floor
here: what is measured is their growth from the smallest to the largest size (target: at most 2x).
"""
from __future__ import annotations

import argparse
import io
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import print_table, row  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLASSES = 10
PAGES_AFTER_IMPORT = ("dataset page", "grid first page", "grid last page", "train form")
PAGES_AFTER_TRAINING = ("run progress poll", "results page")
SAMPLES = 15


def make_zip(path: Path, count: int, seed: int = 0) -> Path:
    """`count` distinct 128 px JPEGs (smooth colour fields + noise) in class0..class9 folders."""
    from PIL import Image, ImageFilter

    rng = random.Random(seed)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for i in range(count):
            base = Image.new("RGB", (8, 8), tuple(rng.randrange(256) for _ in range(3)))
            for _ in range(6):
                base.putpixel((rng.randrange(8), rng.randrange(8)), tuple(rng.randrange(256) for _ in range(3)))
            img = base.resize((128, 128), Image.BILINEAR).filter(ImageFilter.GaussianBlur(1))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=85)
            zf.writestr(f"class{i % CLASSES}/img{i:06}.jpg", buf.getvalue())
    return path


def bare_intake_seconds(zip_path: Path, app) -> float:
    """The floor: read, hash, decode and thumbnail every entry in one process, nothing stored."""
    from app.blueprints.datasets.images.intake import check_image, sha256_of

    with app.app_context(), zipfile.ZipFile(zip_path) as zf:
        started = time.perf_counter()
        for info in zf.infolist():
            data = zf.read(info)
            check_image(data, sha256=sha256_of(data))
        return time.perf_counter() - started


class Instance:
    """A fresh studio instance (SQLite file, embedded Redis, storage) with a logged-in client and a worker."""

    def __init__(self, folder: Path):
        from app import create_app
        from app.extensions import db
        from app.redis_server import ensure_embedded_redis

        self.folder = folder
        self.redis_url = ensure_embedded_redis(str(folder / "instance"))
        self.config = {"INSTANCE_PATH": str(folder / "instance"), "SECRET_KEY": "bench",
                       "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'studio.sqlite3'}",
                       "REDIS_URL": self.redis_url, "STORAGE_DIR": str(folder / "storage"),
                       "RQ_QUEUE": f"bench-{uuid.uuid4().hex[:6]}", "WTF_CSRF_ENABLED": False,
                       "LOG_LEVEL": "WARNING"}
        self.app = create_app(dict(self.config))
        with self.app.app_context():
            db.create_all()
        self.client = self.app.test_client()
        self.worker = None

    def start_worker(self) -> None:
        """Start `python worker.py` and wait until it listens on the queue (its start-up is not timed)."""
        from rq import Worker

        from app.extensions import get_queue

        env = dict(os.environ, DATABASE_URL=self.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=self.redis_url,
                   RQ_QUEUE=self.config["RQ_QUEUE"], STORAGE_DIR=self.config["STORAGE_DIR"],
                   INSTANCE_PATH=self.config["INSTANCE_PATH"], SECRET_KEY="bench")
        self.log = open(self.folder / "worker.log", "wb")
        self.worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=self.log,
                                       stderr=subprocess.STDOUT)
        with self.app.app_context():
            deadline = time.monotonic() + 120
            while not Worker.all(queue=get_queue()):
                if self.worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker did not start; see {self.folder / 'worker.log'}")
                time.sleep(0.2)

    def close(self) -> None:
        from app.redis_server import stop_embedded_redis

        if self.worker is not None:
            self.worker.terminate()
            self.worker.wait(timeout=60)
            self.log.close()
        with self.app.app_context():
            from app.extensions import db

            db.engine.dispose()
        stop_embedded_redis(self.config["INSTANCE_PATH"])
        shutil.rmtree(self.folder, ignore_errors=True)

    def setup_user_and_dataset(self) -> int:
        self.client.post("/register", data={"username": "bench", "password": "bench horse battery",
                                            "confirm": "bench horse battery"})
        response = self.client.post("/datasets/new", data={"name": "Scale", "description": ""})
        return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def latency_ms(client, url: str, samples: int = SAMPLES) -> float | None:
    """Median time of GET url in ms (None when the page does not answer 200)."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            print(f"  {url} -> {response.status_code}")
            return None
    return statistics.median(times)


def last_page_url(client, dataset_id: int, images: int) -> str:
    """The grid's oldest page: the pager's "Oldest" link (keyset pages), else ?page=N (older code)."""
    html = client.get(f"/datasets/{dataset_id}/label").get_data(as_text=True)
    oldest = re.search(r'href="([^"]*)"[^>]*>Oldest', html)
    if oldest:
        return oldest.group(1).replace("&amp;", "&")
    return f"/datasets/{dataset_id}/label?page={max(1, -(-images // 48))}"


def page_urls(client, dataset_id: int, images: int, run_id: int | None = None) -> dict[str, str]:
    urls = {"dataset page": f"/datasets/{dataset_id}", "grid first page": f"/datasets/{dataset_id}/label",
            "grid last page": last_page_url(client, dataset_id, images),
            "train form": f"/datasets/{dataset_id}/train"}
    if run_id is not None:
        urls |= {"run progress poll": f"/models/{run_id}/progress", "results page": f"/models/{run_id}"}
    return urls


def import_and_time(inst: Instance, dataset_id: int, zip_path: Path, count: int) -> dict:
    """Upload the zip, time pages while the worker imports it; returns timings."""
    started = time.perf_counter()
    with open(zip_path, "rb") as fh:
        response = inst.client.post(f"/datasets/{dataset_id}/upload", data={"files": (fh, "images.zip")},
                                    headers={"Accept": "application/json"}, content_type="multipart/form-data")
    request_s = time.perf_counter() - started
    assert response.status_code == 202, response.data[:300]
    status_url = response.json["import"]["status_url"]
    during: dict[str, list[float | None]] = {name: [] for name in PAGES_AFTER_IMPORT}
    while True:
        status = inst.client.get(status_url).json
        if status["status"] not in ("queued", "running"):
            break
        if status["status"] == "running" and status["processed"]:
            for name, url in page_urls(inst.client, dataset_id, max(status["added"], 1)).items():
                during[name].append(latency_ms(inst.client, url, samples=1))
        time.sleep(1.0)  # a person clicking around, not a load test
    total_s = time.perf_counter() - started
    assert status["status"] == "finished" and status["added"] == count, status
    return {"request_s": request_s, "import_s": total_s,
            "during": {k: _summary(v) for k, v in during.items()}}


def _summary(values: list[float | None]) -> float | str | None:
    """Median latency; 'failed' when any request did not answer 200; None when none was sampled."""
    if any(v is None for v in values):
        return "failed"
    return statistics.median(values) if values else None


def train_and_time(inst: Instance, dataset_id: int, image_size: int | None) -> dict:
    form = {"name": "quick", "architecture": "efficientnet_lite0", "mode": "quick", "optimizer": "adamw",
            "backbone_lr_factor": "0.1", "weight_decay": "0.0001", "momentum": "0.9", "schedule": "cosine",
            "step_size": "5", "gamma": "0.1", "label_smoothing": "0.1", "early_stopping_patience": "10",
            "val_fraction": "0.15", "test_fraction": "0.15", "seed": "0", "head": "linear", "dropout": "0.2"}
    if image_size:
        form["image_size"] = str(image_size)
    started = time.perf_counter()
    response = inst.client.post(f"/datasets/{dataset_id}/train", data=form)
    assert response.status_code == 302, response.data[:500]
    run_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    polls = []
    while True:
        t0 = time.perf_counter()
        page = inst.client.get(f"/models/{run_id}/progress")
        polls.append((time.perf_counter() - t0) * 1000)
        if "HX-Trigger" in page.headers:  # the run finished
            break
        time.sleep(1.0)
    return {"run_id": run_id, "train_s": time.perf_counter() - started, "poll_during_ms": statistics.median(polls)}


def measure(size: int, work: Path, train: bool, image_size: int | None) -> dict:
    zip_path = work / f"images-{size}.zip"
    if not zip_path.exists():  # generated once, kept for later runs
        make_zip(zip_path.with_suffix(".tmp"), size).replace(zip_path)
    inst = Instance(Path(tempfile.mkdtemp(dir=work, prefix=f"instance-{size}-")))
    try:
        floor_s = bare_intake_seconds(zip_path, inst.app)
        dataset_id = inst.setup_user_and_dataset()
        inst.start_worker()
        result = {"size": size, "floor_s": floor_s, **import_and_time(inst, dataset_id, zip_path, size)}
        urls = page_urls(inst.client, dataset_id, size)
        result["after"] = {name: latency_ms(inst.client, url) for name, url in urls.items()}
        if train:
            result |= train_and_time(inst, dataset_id, image_size)
            urls = page_urls(inst.client, dataset_id, size, result["run_id"])
            result["after"] |= {name: latency_ms(inst.client, urls[name]) for name in PAGES_AFTER_TRAINING}
        return result
    finally:
        inst.close()


def _ms(value) -> float:
    """nan when not measured (import too short to sample) or failed (the result column says which)."""
    return value if isinstance(value, float) else float("nan")


def rows_for(results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        n = r["size"]
        rows += [row(f"{n:>6} images: import wall time (upload to finished), s", r["import_s"], "info", True),
                 row(f"{n:>6} images: import, images/s", n / r["import_s"], "info", True),
                 row(f"{n:>6} images: import / bare intake on one core", r["import_s"] / r["floor_s"], "info", True),
                 row(f"{n:>6} images: upload request (stream to disk, check zip), s", r["request_s"], "info", True)]
        rows += [row(f"{n:>6} images: {page} during import, ms", _ms(v), "info", v != "failed")
                 for page, v in r["during"].items()]
        rows += [row(f"{n:>6} images: {page} after, ms", _ms(v), "info", v is not None) for page, v in r["after"].items()]
        if "train_s" in r:
            rows += [row(f"{n:>6} images: quick training (queued to finished), s", r["train_s"], "info", True),
                     row(f"{n:>6} images: run progress poll during training, ms", r["poll_during_ms"], "info", True)]
    small, large = results[0], results[-1]
    if len(results) > 1:
        for page in large["after"]:
            a, b = small["after"].get(page), large["after"].get(page)
            ratio = (b / a) if a and b else float("nan")
            rows.append(row(f"growth {small['size']} -> {large['size']}: {page}", ratio, "<= 2", a and b and ratio <= 2))
    return rows


def run(sizes=(2000, 20000), train: bool = True, image_size: int | None = None) -> list[dict]:
    work = ROOT / "bench" / ".scale"
    work.mkdir(exist_ok=True)
    results = []
    for size in sizes:
        results.append(measure(size, work, train, image_size))
        print(f"{size} images: {results[-1]}")
    return rows_for(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000", help="comma-separated dataset sizes (default 2000,20000)")
    parser.add_argument("--no-train", action="store_true", help="skip the quick training run")
    parser.add_argument("--train-image-size", type=int, default=None, help="image size for the quick run")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    print_table(run(sizes, not args.no_train, args.train_image_size), "bench/scale.py")


if __name__ == "__main__":
    main()
