"""The whole loop through a bucket: upload on the web, train in a worker process on "another machine"
(its own empty STORAGE_DIR), predict and download on the web, nothing shared but the bucket."""
from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import pytest
import requests

from app.extensions import db
from app.filestore import image_key, run_key, run_prefix, thumb_key
from app.models import Image, TrainingRun
from app.storage import get_storage
from tests.conftest import child_env, image_bytes, stored_keys
from tests.datasets.conftest import upload
from tests.ops.conftest import ROOT
from tests.training.conftest import BLUE, RED, TINY


def _local_files(folder) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _labelled_upload(client) -> int:
    """A dataset of 6 red and 6 blue images uploaded through the page's upload route, then labelled."""
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.services import create_dataset

    dataset = create_dataset(client.user.id, "Colours")
    for name, colour in (("red", RED), ("blue", BLUE)):
        label = add_class(dataset.id, name)
        files = [(f"{name}{i}.png", image_bytes(colour, noise=i + 1 + 100 * label.position)) for i in range(6)]
        results = upload(client, dataset.id, files).json["results"]
        ids = [r["image_id"] for r in results]
        assert len(ids) == 6, results
        assert client.post(f"/datasets/{dataset.id}/images/label",
                           data={"image_ids": ids, "label_id": label.id}).status_code in (200, 302)
    return dataset.id


def _train_in_other_worker(app, tmp_path) -> subprocess.CompletedProcess:
    """`python worker.py --burst` with its own, empty storage folder: it reads and writes the bucket only."""
    worker_dir = tmp_path / "other-machine"
    return subprocess.run([sys.executable, "worker.py", "--burst"], cwd=ROOT, capture_output=True, text=True,
                          env=child_env(app, STORAGE_DIR=worker_dir, WORKER_PRELOAD_ML="0"), timeout=300)


@pytest.mark.slow
def test_upload_train_predict_download_all_through_the_bucket(app, logged_in, tmp_path):
    dataset_id = _labelled_upload(logged_in)
    shas = [i.sha256 for i in db.session.query(Image).filter_by(dataset_id=dataset_id)]
    storage = get_storage()
    assert storage.remote and all(storage.exists(image_key(s)) and storage.exists(thumb_key(s)) for s in shas)
    web_dir = storage.local_root
    assert not [f for f in _local_files(web_dir) if not f.startswith("cache/")]  # nothing kept on the web's disk

    assert logged_in.post(f"/datasets/{dataset_id}/train", data=TINY).status_code == 302
    run = db.session.query(TrainingRun).one()
    db.session.rollback()  # hold no read transaction while the worker writes
    done = _train_in_other_worker(app, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    db.session.expire_all()
    run = db.session.get(TrainingRun, run.id)
    assert run.status == "succeeded", (run.error, done.stderr[-3000:])
    assert run.artifact_dir == storage.ref(run_prefix(run.id)) and run.artifact_dir.startswith("s3://")
    assert {"model.onnx", "model_card.json"} <= {k.rsplit("/", 1)[1] for k in stored_keys(run_prefix(run.id))}
    worker_files = _local_files(tmp_path / "other-machine")
    cached = [f for f in worker_files if f.startswith("cache/objects/")]
    assert sum(1 for f in cached if "/images/" in f) == len(shas)  # each image fetched into its cache once
    assert not [f for f in worker_files if f.startswith(("images/", "models/", "work/"))]  # nothing else kept

    predicted = logged_in.post(f"/models/{run.id}/predict", data={"file": [
        (io.BytesIO(image_bytes(RED, noise=77)), "r.png"), (io.BytesIO(image_bytes(BLUE, noise=78)), "b.png")]})
    assert predicted.status_code == 200, predicted.data
    assert [p["category"] for p in predicted.json["predictions"]] == ["red", "blue"]
    assert any(f.startswith("cache/objects/") and f.endswith("model.onnx") for f in _local_files(web_dir))

    onnx = storage.read(run_key(run.id, "model.onnx"))
    streamed = logged_in.get(f"/models/{run.id}/download/onnx")
    assert streamed.status_code == 200 and streamed.data == onnx
    assert int(streamed.headers["Content-Length"]) == len(onnx)
    assert "attachment" in streamed.headers["Content-Disposition"]

    app.config["STORAGE_PRESIGNED_DOWNLOADS"] = True
    redirect = logged_in.get(f"/models/{run.id}/download/onnx")
    assert redirect.status_code == 302 and redirect.location.startswith(app.config["S3_ENDPOINT_URL"])
    direct = requests.get(redirect.location, timeout=30)
    assert direct.status_code == 200 and direct.content == onnx
    assert "attachment" in direct.headers["Content-Disposition"]

    exported = logged_in.get(f"/datasets/{dataset_id}/export")
    with zipfile.ZipFile(io.BytesIO(exported.data)) as zf:
        assert sorted(n.split("/")[0] for n in zf.namelist()) == ["blue"] * 6 + ["red"] * 6
        first = db.session.query(Image).filter_by(dataset_id=dataset_id).order_by(Image.id).first()
        assert zf.read(f"red/{first.filename}") == storage.read(image_key(first.sha256))
