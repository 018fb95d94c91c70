"""A model's downloads: file names from the model's name, the card with the current threshold, and the
"Download all" zip streamed from storage (local folder or, with TEST_STORAGE_URL=moto, a bucket)."""
from __future__ import annotations

import io
import json
import os
import zipfile
from types import SimpleNamespace
from urllib.parse import quote

import pytest

from app.blueprints.training.downloads import CHUNK, file_stem
from app.extensions import db
from app.filestore import run_key
from app.ml.artifacts import CHECKPOINT, FILES, README
from app.models import TrainingRun
from app.storage import get_storage
from tests.conftest import store_run_files

CLASSES = ["ants", "bees"]
BIG = 3 * CHUNK + 12345  # a "model" over three read chunks


def _card() -> dict:
    return {"format": 1, "classes": CLASSES, "architecture": "small_cnn", "architecture_label": "Small CNN",
            "input": {"size": 32, "resize_size": 36, "decode_side": 37, "mean": [0.5] * 3, "std": [0.25] * 3},
            "threshold": None, "files": dict(FILES)}


def _files(folder) -> dict[str, bytes]:
    blobs = {FILES["state_dict"]: os.urandom(BIG), FILES["torchscript"]: os.urandom(1000),
             FILES["onnx"]: os.urandom(2000), CHECKPOINT: os.urandom(3000),
             FILES["card"]: json.dumps(_card()).encode(), FILES["preprocess"]: b"# old preprocess.py\n"}
    for name, data in blobs.items():
        (folder / name).write_bytes(data)
    return blobs


@pytest.fixture
def model(logged_in, make_dataset, tmp_path):
    """A succeeded run with (fake) model files in storage; returns (run, {file name: bytes})."""
    dataset = make_dataset(logged_in.user, {"red": 1, "blue": 1})
    run = TrainingRun(dataset_id=dataset.id, created_by_id=logged_in.user.id, name="Hymenoptera · Quick · 2026-11-27",
                      architecture="small_cnn", mode="scratch", status="succeeded", classes=CLASSES)
    db.session.add(run)
    db.session.flush()
    blobs = _files(tmp_path)
    store_run_files(run, tmp_path)
    db.session.commit()
    return run, blobs


@pytest.mark.parametrize("name, stem", [
    ("Hymenoptera · Quick · 2026-11-27", "Hymenoptera-Quick-2026-11-27-model-3"),
    ("ants-bees · Quick · 2026-11-27 (2)", "ants-bees-Quick-2026-11-27-2-model-3"),  # a numbered default name
    ("ants-bees (2)", "ants-bees-2-model-3"),
    ("  my_model -- v2!! ", "my_model-v2-model-3"),
    ("Café du Nord", "Café-du-Nord-model-3"),
    ("Cafe\u0301", "Café-model-3"),                    # decomposed é: one letter, not "Cafe-"
    ("हिन्दी मॉडल", "हिन्दी-मॉडल-model-3"),              # vowel signs (marks) stay inside their words
    ("日本語 / モデル", "日本語-モデル-model-3"),
    ("·/·", "model-3"),                                # nothing to keep: the id alone, not "model-model-3"
    ("(2)", "2-model-3"),
    ("x" * 80, "x" * 60 + "-model-3"),
    ("x" * 59 + " (2)", "x" * 59 + "-model-3"),      # cut at the limit: no dangling "-"
])
def test_file_names_collapse_separators_and_keep_letters_of_any_script(name, stem):
    assert file_stem(SimpleNamespace(name=name, id=3)) == stem


def test_single_downloads_are_named_after_the_model(logged_in, model):
    run, blobs = model
    with logged_in.get(f"/models/{run.id}/download/onnx") as response:
        assert response.status_code == 200 and response.data == blobs[FILES["onnx"]]
        assert response.headers["Content-Disposition"] == \
            f"attachment; filename=Hymenoptera-Quick-2026-11-27-model-{run.id}.onnx"
    html = logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    assert f"/models/{run.id}/download/zip" in html and "Download all (.zip)" in html


@pytest.mark.parametrize("name, stem, ascii_stem", [
    ("Café · 日本", "Café-日本-model-{id}", "Cafe-model-{id}"),
    ("日本語 (2)", "日本語-2-model-{id}", "2-model-{id}"),
    ("モデル", "モデル-model-{id}", "model-{id}"),  # old clients' name keeps the id, not a bare "-1"
])
def test_a_name_in_another_script_is_sent_as_utf8(app, logged_in, model, name, stem, ascii_stem):
    from app.blueprints.predict.tokens import create_token

    run, _ = model
    run.name = name
    db.session.commit()
    stem, ascii_stem = stem.format(id=run.id), ascii_stem.format(id=run.id)
    auth = {"Authorization": f"Bearer {create_token(logged_in.user.id, 'script')[1]}"}
    for kind, suffix in (("onnx", ".onnx"), ("card", ".model_card.json"), ("zip", ".zip")):
        for client, url, headers in ((logged_in, f"/models/{run.id}/download/{kind}", {}),
                                     (app.test_client(), f"/api/v1/runs/{run.id}/files/{kind}", auth)):
            with client.get(url, headers=headers) as response:
                response.get_data()  # a zip streams: read it while its request is open
                disposition = response.headers["Content-Disposition"]
            assert response.status_code == 200 and disposition.isascii()
            assert f"filename*=UTF-8''{quote(f'{stem}{suffix}')}" in disposition, disposition
            assert f"filename={ascii_stem}{suffix};" in disposition, disposition


@pytest.mark.parametrize("threshold", [0.8, None])
def test_the_card_and_preprocess_py_carry_the_current_threshold(logged_in, model, threshold):
    run, _ = model
    run.threshold = threshold  # set on the run page after training: the stored card has none
    db.session.commit()
    with logged_in.get(f"/models/{run.id}/download/card") as response:
        card = json.loads(response.data)
    assert card["threshold"] == threshold and "unknown" in card["threshold_rule"]
    assert card["classes"] == CLASSES and card["files"] == FILES
    stem = f"Hymenoptera-Quick-2026-11-27-model-{run.id}"
    assert f"inside {stem}.zip" in card["files_note"] and f"{stem}.onnx, {stem}.model_card.json" in card["files_note"]
    with logged_in.get(f"/models/{run.id}/download/preprocess") as response:
        source = response.get_data(as_text=True)
    assert response.headers["Content-Disposition"].endswith(f"{stem}.preprocess.py")
    assert "def card_threshold(" in source and '"classes": ["ants", "bees"]' in source  # today's, for this model


def test_download_all_streams_one_zip_under_the_card_names(logged_in, model):
    run, blobs = model
    run.threshold = 0.8
    db.session.commit()
    stem = f"Hymenoptera-Quick-2026-11-27-model-{run.id}"
    response = logged_in.get(f"/models/{run.id}/download/zip")
    assert response.status_code == 200 and response.is_streamed and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == f"attachment; filename={stem}.zip"
    chunks = list(response.response)
    response.close()
    assert max(len(c) for c in chunks) < CHUNK + 65536  # read and sent a chunk at a time, never whole
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as zf:
        assert zf.testzip() is None
        infos = {info.filename: info for info in zf.infolist()}
        assert list(infos) == [f"{stem}/{name}" for name in FILES.values()] + [f"{stem}/{README}"]
        for name in (FILES["state_dict"], FILES["torchscript"], FILES["onnx"]):
            assert zf.read(f"{stem}/{name}") == blobs[name]
            assert infos[f"{stem}/{name}"].compress_type == zipfile.ZIP_STORED  # weights barely compress
        card = json.loads(zf.read(f"{stem}/{FILES['card']}"))
        source = zf.read(f"{stem}/{FILES['preprocess']}").decode()
        readme = zf.read(f"{stem}/{README}").decode()
        assert infos[f"{stem}/{README}"].compress_type == zipfile.ZIP_DEFLATED
        assert all(info.external_attr >> 16 == 0o644 for info in infos.values())  # readable once unzipped
    assert card["threshold"] == 0.8 and set(card["files"].values()) == {n.split("/")[1] for n in infos} - {README}
    assert "def card_threshold(" in source
    assert "python preprocess.py model.onnx photo.jpg" in readme and "0.8 (80%" in readme
    assert all(name in readme for name in FILES.values()) and "checkpoint" in readme.lower()


def test_download_all_is_refused_before_sending_when_a_file_is_missing(logged_in, model):
    run, _ = model
    get_storage().delete(run_key(run.id, FILES["onnx"]))
    response = logged_in.get(f"/models/{run.id}/download/zip")
    assert response.status_code == 404 and "missing from storage" in response.get_data(as_text=True)
    run.status = "failed"
    db.session.commit()
    assert logged_in.get(f"/models/{run.id}/download/zip").status_code == 404
    assert logged_in.get(f"/models/{run.id}/download/card").status_code == 404


def test_the_api_downloads_what_the_page_does(app, logged_in, model):
    """GET /api/v1/runs/<id>/files/<kind>: the same card (with the threshold), names and zip as the page."""
    from app.blueprints.predict.tokens import create_token

    run, _ = model
    run.threshold = 0.8
    db.session.commit()
    api = app.test_client()
    auth = {"Authorization": f"Bearer {create_token(logged_in.user.id, 'script')[1]}"}
    with api.get(f"/api/v1/runs/{run.id}/files/card", headers=auth) as response:
        assert response.status_code == 200 and json.loads(response.data)["threshold"] == 0.8
        assert response.headers["Content-Disposition"].endswith(f"Hymenoptera-Quick-2026-11-27-model-{run.id}.model_card.json")
    with api.get(f"/api/v1/runs/{run.id}/files/zip", headers=auth) as response:
        assert response.status_code == 200 and response.mimetype == "application/zip"
        body = response.data
    with logged_in.get(f"/models/{run.id}/download/zip") as page:
        assert body == page.data
    spec = api.get("/api/openapi.json").json
    kinds = spec["paths"]["/api/v1/runs/{run_id}/files/{kind}"]["get"]["parameters"]
    assert any("zip" in (p.get("schema") or {}).get("enum", []) for p in kinds)
