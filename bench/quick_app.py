"""Benchmark: 2,000 new images, "Start training" -> a usable model, through the web app and a real worker.

Usage: python bench/quick_app.py [count]      (BENCH_APP_IMAGES, default 2000)

A throwaway studio (SQLite, embedded Redis, storage in a temporary folder) holds one dataset of
`count` generated 320x240 JPEGs in 10 classes (bench/_features.py), labelled, never trained on. A real
`python worker.py` (the default forking worker) waits on the queue. The clock starts when the "Train"
form is posted with its defaults (quick mode, EfficientNet-Lite0, automatic head) and stops when a
POST /predict with that model answers - queueing, the job process, features of every image, both
heads, export, storing the run and loading the model for serving included.

The backbone's exported copies are made before the clock starts, as on any studio that has trained
once. The floor: decoding all images over all cores plus the bare ONNX Runtime forward of as many
images (bench/_features.py), measured in this process while the worker is idle. Target <= 2x.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import ROOT, print_table, row, seed_dataset  # noqa: E402
from bench._features import CLASSES, generated_images, measure_floor, warm  # noqa: E402

FORM = {"name": "bench", "architecture": "efficientnet_lite0", "mode": "quick", "optimizer": "adamw",
        "backbone_lr_factor": "0.1", "weight_decay": "0.0001", "momentum": "0.9", "schedule": "cosine",
        "step_size": "5", "gamma": "0.1", "label_smoothing": "0.1", "early_stopping_patience": "10",
        "val_fraction": "0.15", "test_fraction": "0.15", "seed": "0", "head": "auto", "dropout": "0.2",
        "hflip": "y", "random_resized_crop": "y"}


def _studio(instance: Path) -> tuple[dict, object]:
    env = {**os.environ, "INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING",
           "DATABASE_URL": f"sqlite:///{instance / 'studio.sqlite3'}", "STORAGE_DIR": str(instance / "storage"),
           "REDIS_URL": f"unix://{instance / 'redis.sock'}", "RQ_QUEUE": "bench"}
    from app import create_app

    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "STORAGE_DIR": env["STORAGE_DIR"],
                      "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"], "REDIS_URL": env["REDIS_URL"],
                      "RQ_QUEUE": "bench", "WTF_CSRF_ENABLED": False})
    return env, app


def _fill(app, images) -> tuple[int, str]:
    """A user, a dataset of the images (labelled, files in storage) and an API token."""
    from app.blueprints.auth.services import register_user
    from app.blueprints.predict.tokens import create_token
    from app.extensions import db

    db.create_all()
    user = register_user("bench", "bench-password-1234")
    dataset_id = seed_dataset(user, images, [f"class {k}" for k in range(CLASSES)])
    _, token = create_token(user.id, "bench")
    return dataset_id, token


def _prebuild_backbone(storage_dir: Path):
    """Export and trace the backbone as a studio that has trained once already has it; the floor's pass."""
    from app.ml.architectures import get_architecture
    from app.ml.backbone_runtime import prebuilt_exports
    from app.ml.embeddings import FeatureSetup, Preprocess, prepare_pass

    info = get_architecture("efficientnet_lite0")
    how = prepare_pass("efficientnet_lite0", Preprocess(224, info.mean, info.std),
                       FeatureSetup(backbone_dir=storage_dir / "cache" / "backbones", device="cpu"))
    prebuilt_exports(how.backbone)
    return how


def _wait_for_worker(app, worker, seconds: float = 120) -> None:
    from rq import Worker

    from app.extensions import get_redis

    deadline = time.monotonic() + seconds
    while not Worker.all(connection=get_redis()):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the worker did not start")
        time.sleep(0.1)


def _train_and_predict(app, dataset_id: int, token: str, probe: bytes) -> tuple[float, object]:
    from app.extensions import db
    from app.models import TrainingRun

    client = app.test_client()
    client.post("/login", data={"username": "bench", "password": "bench-password-1234"})
    started = time.perf_counter()
    response = client.post(f"/datasets/{dataset_id}/train", data=FORM)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    while True:
        db.session.expire_all()
        run = db.session.scalars(db.select(TrainingRun)).one()
        if run.status in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.05)
    db.session.commit()
    assert run.status == "succeeded", run.error
    answer = client.post("/predict", data={"model": str(run.id), "file": (io.BytesIO(probe), "probe.jpg")},
                         headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.get_json()["predictions"][0].get("category"), answer.data
    return time.perf_counter() - started, run


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


def run(count: int | None = None) -> list[dict]:
    from app.redis_server import ensure_embedded_redis, stop_embedded_redis

    count = count or int(os.environ.get("BENCH_APP_IMAGES", "2000"))
    images = generated_images(count)
    warm(p for p, _ in images)
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp)
        ensure_embedded_redis(str(instance))
        worker = None
        try:
            env, app = _studio(instance)
            with app.app_context():
                dataset_id, token = _fill(app, images)
                how = _prebuild_backbone(instance / "storage")
                with open(instance / "worker.log", "w") as log:
                    worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True)
                _wait_for_worker(app, worker)
                floor = measure_floor([p for p, _ in images], how)
                seconds, run_row = _train_and_predict(app, dataset_id, token, Path(images[0][0]).read_bytes())
                metrics = dict(run_row.metrics)
        finally:
            if worker is not None:
                _stop(worker)
            stop_embedded_redis(str(instance))
    ratio = seconds / floor.seconds
    print(f"{count} images; floor {floor.seconds:.2f}s (decode {floor.decode_s:.2f}s + forward "
          f"{floor.forward_s:.2f}s); start -> usable {seconds:.2f}s; engine {metrics['seconds']:.2f}s, features "
          f"{metrics['embedding_stats']}; test accuracy {metrics.get('accuracy')}; "
          f"{metrics['head_choice']['reason']}")
    return [
        row(f"{count} new images, Start training -> usable model / floor", ratio, "<= 2", ratio <= 2),
        row(f"{count} new images, Start training -> usable model, s", seconds, "info", True),
        row(f"floor for {count} images (decode all cores + ONNX fwd), s", floor.seconds, "info", True),
    ]


if __name__ == "__main__":
    rows = run(int(sys.argv[1]) if len(sys.argv) > 1 else None)
    print_table(rows, "bench/quick_app.py")
