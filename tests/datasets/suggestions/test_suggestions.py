"""Suggest labels: a real tiny model scores the unlabeled images in a worker; users accept in bulk."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image as PILImage

from app.extensions import db
from app.models import Image
from tests.conftest import login, run_jobs, store_run_files
from tests.datasets.conftest import upload
from tests.predict.conftest import CLASSES, COLORS, color_image, trained_artifacts  # noqa: F401 (fixture)


def blend(a: str, b: str, weight: float, seed: int) -> bytes:
    """An image between two colours: the model should hesitate on these."""
    rng = np.random.default_rng(seed)
    base = weight * np.array(COLORS[a]) + (1 - weight) * np.array(COLORS[b])
    pixels = np.clip(base + rng.integers(-20, 21, (40, 40, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(pixels, "RGB").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def colours(app, logged_in, trained_artifacts):  # noqa: F811
    """alice's dataset: classes red/green/blue, one image labeled green by hand, 12 unlabeled images
    (pure colours and in-between ones), and a succeeded model trained on red/green/blue."""
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.services import create_dataset
    from app.models import TrainingRun

    dataset = create_dataset(logged_in.user.id, "Colours")
    labels = {name: add_class(dataset.id, name) for name in CLASSES}
    files = [(f"{c}{i}.png", color_image(c, seed=500 + 10 * k + i)) for k, c in enumerate(CLASSES) for i in range(2)]
    files += [(f"mix{i}.png", blend(a, b, w, i)) for i, (a, b, w) in enumerate(
        [("red", "blue", .55), ("red", "blue", .7), ("blue", "red", .6), ("green", "blue", .6),
         ("blue", "green", .55), ("red", "green", .65)])]
    files.append(("hand.png", color_image("green", seed=999)))
    ids = {r["filename"]: r["image_id"] for r in upload(logged_in, dataset.id, files).json["results"]}
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": ids["hand.png"],
                                                                 "label_id": labels["green"].id})
    run = TrainingRun(dataset_id=dataset.id, created_by_id=logged_in.user.id, name="colour model",
                      architecture="small_cnn", mode="scratch", status="succeeded", classes=list(CLASSES))
    db.session.add(run)
    db.session.flush()
    store_run_files(run, trained_artifacts)
    db.session.commit()
    return dataset, run, ids, labels


def _suggest(app, client, dataset_id: int) -> dict:
    from app.blueprints.datasets.suggestions.services import read_state

    response = client.post(f"/datasets/{dataset_id}/suggestions", data={})
    assert response.status_code == 302
    polling = client.get(f"/datasets/{dataset_id}/suggestions", headers={"HX-Request": "true"})
    assert b'hx-trigger="every 1s"' in polling.data and b"<html" not in polling.data
    run_jobs(app)
    return read_state(dataset_id)


def test_suggest_rank_and_accept_in_bulk(app, logged_in, colours):
    dataset, run, ids, labels = colours
    state = _suggest(app, logged_in, dataset.id)
    assert state["status"] == "done" and state["model_id"] == run.id and state["method"] == "model"
    by_image = {s["image_id"]: s for s in state["suggestions"]}
    assert set(by_image) == set(ids.values()) - {ids["hand.png"]}  # only the unlabeled images
    for colour in CLASSES:  # the model is right on the plain colours
        assert by_image[ids[f"{colour}0.png"]]["label"] == colour
    assert all(0 <= s["margin"] <= s["confidence"] <= 1 for s in state["suggestions"])

    page = logged_in.get(f"/datasets/{dataset.id}/suggestions").data.decode()
    assert 'hx-trigger="every 1s"' not in page  # finished: no more polling
    sections = re.findall(r'<section class="card sg-group">(.*?)</section>', page, re.S)
    assert len(sections) >= 2
    for html in sections:  # within each group the least sure (smallest margin) come first
        shown = [int(v) for v in re.findall(r'name="image_ids" value="(\d+)"', html)]
        margins = [by_image[i]["margin"] for i in shown]
        assert margins == sorted(margins) and len(set(by_image[i]["label"] for i in shown)) == 1

    red = [i for i, s in by_image.items() if s["label"] == "red"]
    response = logged_in.post(f"/datasets/{dataset.id}/suggestions/accept", data={"group": "red"},
                              headers={"HX-Request": "true"})
    assert response.status_code == 200 and f"{len(red)} suggestions accepted".encode() in response.data
    for image_id in red:
        image = db.session.get(Image, image_id)
        assert (image.label_id, image.label_source, image.label_model_id, image.labeled_by_id) == \
            (labels["red"].id, "suggestion", run.id, logged_in.user.id)

    blue = [i for i, s in by_image.items() if s["label"] == "blue"][:2]
    response = logged_in.post(f"/datasets/{dataset.id}/suggestions/accept",
                              data={"image_ids": blue + [ids["hand.png"], red[0]]}, follow_redirects=True)
    assert b"2 suggestions accepted" in response.data and b"2 images were skipped" in response.data
    assert [db.session.get(Image, i).label_id for i in blue] == [labels["blue"].id] * 2
    hand = db.session.get(Image, ids["hand.png"])
    assert (hand.label_id, hand.label_source) == (labels["green"].id, "user")  # never overwritten
    # accepted images leave the page; the rest stay
    page = logged_in.get(f"/datasets/{dataset.id}/suggestions").data.decode()
    shown = {int(v) for v in re.findall(r'name="image_ids" value="(\d+)"', page)}
    assert shown == set(by_image) - set(red) - set(blue)


def test_already_labeled_meanwhile_is_not_overwritten(app, logged_in, colours):
    dataset, run, ids, labels = colours
    state = _suggest(app, logged_in, dataset.id)
    target = ids["mix0.png"]
    suggested = next(s["label"] for s in state["suggestions"] if s["image_id"] == target)
    other = next(n for n in CLASSES if n != suggested)
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": target, "label_id": labels[other].id})
    logged_in.post(f"/datasets/{dataset.id}/suggestions/accept", data={"group": suggested})
    image = db.session.get(Image, target)
    assert (image.label_id, image.label_source) == (labels[other].id, "user")


def test_renamed_class_is_not_accepted(app, logged_in, colours):
    from app.blueprints.datasets.classes import update_class

    dataset, run, ids, labels = colours
    _suggest(app, logged_in, dataset.id)
    update_class(dataset.id, labels["green"].id, "lime")
    page = logged_in.get(f"/datasets/{dataset.id}/suggestions")
    assert "no class called “green” any more" in page.text
    response = logged_in.post(f"/datasets/{dataset.id}/suggestions/accept",
                              data={"image_ids": [ids["green0.png"]]}, follow_redirects=True)
    assert b"the class &#39;green&#39; no longer exists" in response.data
    assert db.session.get(Image, ids["green0.png"]).label_id is None


def test_nothing_to_suggest_and_no_model(app, logged_in, colours):
    dataset, run, ids, _ = colours
    db.session.execute(db.update(Image).where(Image.dataset_id == dataset.id).values(label_id=None))
    run.status = "failed"
    db.session.commit()
    response = logged_in.post(f"/datasets/{dataset.id}/suggestions")
    assert response.status_code == 422 and b"Train a model on this dataset first" in response.data
    accept = logged_in.post(f"/datasets/{dataset.id}/suggestions/accept", data={"group": "red"})
    assert accept.status_code == 409 and b"Ask for suggestions first" in accept.data


def test_viewer_sees_but_cannot_suggest_or_accept_and_stranger_gets_404(app, client, make_user, colours):
    from app.blueprints.datasets.sharing import share_dataset
    from app.blueprints.datasets.suggestions.services import read_state

    dataset, run, ids, _ = colours
    _suggest(app, client, dataset.id)  # as alice (the colours fixture logged this client in)
    share_dataset(dataset, make_user("vic").username, "viewer")
    make_user("eve")
    client.post("/logout")
    login(client, "vic")
    page = client.get(f"/datasets/{dataset.id}/suggestions")
    assert page.status_code == 200 and b"sg-group" in page.data and b'name="image_ids"' not in page.data
    assert client.post(f"/datasets/{dataset.id}/suggestions").status_code == 403
    assert client.post(f"/datasets/{dataset.id}/suggestions/accept", data={"group": "red"}).status_code == 403
    client.post("/logout")
    login(client, "eve")
    assert client.get(f"/datasets/{dataset.id}/suggestions").status_code == 404
    assert client.post(f"/datasets/{dataset.id}/suggestions").status_code == 404
    assert client.post(f"/datasets/{dataset.id}/suggestions/accept", data={"group": "red"}).status_code == 404
    assert read_state(dataset.id)["status"] == "done"
    assert db.session.scalar(db.select(db.func.count(Image.id)).where(Image.label_source == "suggestion")) == 0


def test_quick_mode_suggests_from_stored_features(tmp_path):
    """Quick-mode models score through backbone features + head: same answers as the full exported
    model, and a second pass reads every vector from the dataset's feature store instead of running
    the backbone; an unreadable file is listed, not fatal."""
    from app.ml.data import Sample
    from app.ml.embeddings import FeatureSetup, ImageFiles
    from app.ml.engine import TrainInputs, TrainSetup, train
    from app.ml.inference import Predictor, decode_image
    from app.ml.options import TrainOptions
    from app.ml.suggest import score_files

    paths = []
    for k, colour in enumerate(CLASSES):
        for i in range(4):
            path = tmp_path / f"{colour}{i}.png"
            path.write_bytes(color_image(colour, seed=700 + 10 * k + i))
            paths.append(str(path))
    samples = [Sample(i, p, i // 4) for i, p in enumerate(paths)]
    options = TrainOptions.from_dict({"architecture": "efficientnet_lite0", "mode": "quick", "image_size": 64,
                                      "epochs": 3, "seed": 0})
    train(TrainInputs(samples, CLASSES), options, tmp_path / "model", setup=TrainSetup(device="cpu"))
    fresh = [tmp_path / "new0.png", tmp_path / "new1.png", tmp_path / "broken.png"]
    fresh[0].write_bytes(color_image("blue", seed=1))
    fresh[1].write_bytes(blend("red", "green", .5, 2))
    fresh[2].write_bytes(b"not an image")
    files = ImageFiles([str(p) for p in fresh], ["a0" * 32, "b1" * 32, "c2" * 32], [101, 102, 103])
    setup = FeatureSetup(dataset_dir=tmp_path / "features", backbone_dir=tmp_path / "backbones", device="cpu")
    first = score_files(tmp_path / "model", files, features=setup)
    assert first.method == "embeddings" and first.ok == [0, 1] and first.unreadable == [2]
    full = Predictor.load(tmp_path / "model").predict_proba([decode_image(p.read_bytes()) for p in fresh[:2]])
    np.testing.assert_allclose(first.probs, full, atol=1e-3)
    for p in fresh[:2]:  # the store alone must now be enough: the image files are not read again
        p.unlink()
    again = score_files(tmp_path / "model", ImageFiles(files.paths[:2], files.keys[:2], files.ids[:2]),
                        features=setup)
    np.testing.assert_allclose(again.probs, first.probs, atol=1e-6)


def test_failed_job_is_reported_in_plain_words(app, logged_in, colours):
    from app.blueprints.datasets.suggestions.services import read_state
    from app.filestore import run_prefix
    from app.storage import get_storage

    dataset, run, ids, _ = colours
    assert logged_in.post(f"/datasets/{dataset.id}/suggestions", data={"model_id": run.id}).status_code == 302
    get_storage().delete_prefix(run_prefix(run.id))  # the model's files vanish before the worker gets to it
    run_jobs(app)
    assert read_state(dataset.id)["status"] == "failed"
    page = logged_in.get(f"/datasets/{dataset.id}/suggestions")
    assert b"files or an image are missing" in page.data and b'hx-trigger="every 1s"' not in page.data
    assert b"Suggest labels again" in page.data  # the user can try again


def _explode():
    raise RuntimeError("boom")


def test_a_failed_rq_job_is_not_alive(app):
    from app.blueprints.datasets.suggestions.services import _job_alive
    from app.extensions import get_queue
    from tests.conftest import run_jobs

    job = get_queue().enqueue(_explode, job_timeout=30, result_ttl=60, failure_ttl=60)
    assert _job_alive(job.id)  # queued
    run_jobs(app)
    assert not _job_alive(job.id)
    assert not _job_alive("no-such-job")


def test_accepted_suggestions_can_be_undone(app, logged_in, colours):
    dataset, run, ids, labels = colours
    _suggest(app, logged_in, dataset.id)
    response = logged_in.post(f"/datasets/{dataset.id}/suggestions/accept", data={"group": "red"},
                              headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert "suggestions accepted" in html and "data-undo" in html
    undo_url = re.search(r'action="(/datasets/\d+/images/undo/\d+)"', html).group(1)
    back = logged_in.post(undo_url, data={"next": f"/datasets/{dataset.id}/suggestions"})
    assert back.status_code == 302 and back.headers["Location"].endswith(f"/datasets/{dataset.id}/suggestions")
    db.session.expire_all()
    assert db.session.get(Image, ids["hand.png"]).label_id == labels["green"].id  # never touched
    assert db.session.scalars(db.select(Image).where(Image.dataset_id == dataset.id,
                                                     Image.label_source == "suggestion")).all() == []


def test_the_best_model_is_offered_first_not_the_newest(app, logged_in, colours):
    from app.blueprints.datasets.suggestions.services import read_state
    from app.models import TrainingRun

    dataset, run, _ids, _ = colours

    def model(name: str, validation_ci: list[float], accuracy: float) -> TrainingRun:
        row = TrainingRun(dataset_id=dataset.id, created_by_id=logged_in.user.id, name=name, architecture="small_cnn",
                          mode="scratch", status="succeeded", classes=list(CLASSES), artifact_dir=run.artifact_dir,
                          metrics={"accuracy": accuracy, "validation": {"count": 90, "accuracy_ci95": validation_ci}})
        db.session.add(row)
        db.session.commit()
        return row

    good = model("good", [0.86, 0.97], 0.9)
    model("bad 12", [0.34, 1.0], 0.6)  # newest, 100% right on its 2 validation images: proves little

    def selected() -> str:
        html = logged_in.get(f"/datasets/{dataset.id}/suggestions").get_data(as_text=True)
        return re.search(r'<option value="\d+" selected>([^<]*)</option>', html).group(1)

    assert selected().startswith("good — 90% right on its test images")
    logged_in.user.default_model_id = run.id
    db.session.commit()
    assert selected() == "colour model (your default model)"
    logged_in.user.default_model_id = None
    db.session.commit()
    logged_in.post(f"/datasets/{dataset.id}/suggestions", data={})  # no model named: the best one
    assert read_state(dataset.id)["model_id"] == good.id
