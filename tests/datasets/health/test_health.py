"""Dataset health end to end: a real check in a worker (pretrained EfficientNet-Lite0 at 96 px) finds the
planted near-duplicate, mislabeled, leaked, tiny and broken images; fixes and access rules."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from app.extensions import db
from app.models import Image, TrainingRun
from tests.conftest import image_bytes, login, run_jobs
from tests.datasets.conftest import upload

COLOURS = {"red": (210, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 210)}
HX = {"HX-Request": "true"}


def picture(colour: str, seed: int, size: int = 96) -> PILImage.Image:
    """A gradient in one colour with a few lighter/darker blobs and noise: distinct, but clearly that colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    base = np.array(COLOURS[colour])
    pixels = (base + rng.integers(-40, 40, 3)) * (1 - t) + base * rng.uniform(.4, 1.) * t
    for _ in range(3):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(.1, .3)
        blob = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        pixels[blob] *= rng.uniform(.5, 1.3)
    pixels += rng.normal(0, 8, pixels.shape)
    return PILImage.fromarray(pixels.clip(0, 255).astype(np.uint8))


def encoded(img: PILImage.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture
def planted(app, logged_in):
    """alice's dataset: 10 images per colour; 'dup.jpg' = red0 re-encoded at 88 px; 'oops.png' a red
    picture labelled blue; a 20 px image; 'broken.png' whose stored file got damaged; an empty class."""
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.images.services import set_labels
    from app.blueprints.datasets.services import create_dataset
    from app.filestore import image_key
    from app.storage import get_storage

    app.config["HEALTH_IMAGE_SIZE"] = 96  # small and fast; production uses quick mode's 224
    dataset = create_dataset(logged_in.user.id, "Colours")
    labels = {name: add_class(dataset.id, name) for name in (*COLOURS, "purple")}
    files = {f"{c}{i}.png": encoded(picture(c, 100 * k + i)) for k, c in enumerate(COLOURS) for i in range(10)}
    files["dup.jpg"] = encoded(picture("red", 0).resize((88, 88)), "JPEG", quality=92)
    files["oops.png"] = encoded(picture("red", 999))
    files["tiny.png"] = image_bytes((40, 170, 60), size=(20, 20))
    files["broken.png"] = encoded(picture("green", 555))
    items, ids = list(files.items()), {}
    # small posts: the test client spools a big body to a temporary file it never closes
    for start in range(0, len(items), 10):
        results = upload(logged_in, dataset.id, items[start:start + 10]).json["results"]
        ids |= {r["filename"]: r["image_id"] for r in results}
    assert len(ids) == len(files)
    special = {"dup.jpg": "red", "oops.png": "blue", "tiny.png": "green", "broken.png": "green"}
    for name, image_id in ids.items():
        colour = special.get(name) or name.removesuffix(".png").rstrip("0123456789")
        set_labels(dataset.id, [image_id], labels[colour].id, logged_in.user.id)
    broken = db.session.get(Image, ids["broken.png"])
    get_storage().write(image_key(broken.sha256), b"\x89PNG\r\n\x1a\n not really")
    return dataset, ids, labels


def leaky_run(dataset_id: int, ids: dict) -> TrainingRun:
    """A succeeded model whose test split holds red0 itself (also in train) and dup.jpg (red0's near-copy)."""
    from app.blueprints.training.samples import FrozenSamples, store

    rows = {image.id: image for image in db.session.scalars(db.select(Image))}
    sample = [(ids[n], 0, rows[ids[n]].sha256) for n in ("red0.png", "red1.png", "red0.png", "dup.jpg", "red2.png")]
    frozen = FrozenSamples(["red"], sample, {"train": [0, 1], "val": [], "test": [2, 3, 4]})
    run = TrainingRun(dataset_id=dataset_id, name="leaky model", architecture="small_cnn", mode="scratch",
                      status="succeeded", classes=["red"], snapshot=frozen.summary())
    db.session.add(run)
    db.session.commit()
    store(run.id, frozen)
    return run


def by_kind(findings: list[dict], kind: str) -> list[dict]:
    return [f for f in findings if f["kind"] == kind]


def test_check_finds_planted_problems_and_fixes_them(app, logged_in, planted):
    from app.blueprints.datasets.health.services import health_page, load_health

    dataset, ids, labels = planted
    run = leaky_run(dataset.id, ids)
    started = logged_in.post(f"/datasets/{dataset.id}/health/check", headers=HX)
    assert started.status_code == 200 and b'hx-trigger="every 1s"' in started.data
    assert logged_in.post(f"/datasets/{dataset.id}/health/check", headers=HX).status_code == 409
    run_jobs(app)
    state = load_health(dataset.id)
    assert state["state"] == "done", state
    findings = state["report"]["findings"]

    [dup] = by_kind(findings, "duplicate")
    assert sorted(dup["images"]) == sorted([ids["red0.png"], ids["dup.jpg"]]) and dup["similarity"] >= 0.95
    label_errors = by_kind(findings, "label_error")
    errors = {f["images"][0]: f for f in label_errors}
    assert label_errors[0]["images"] == [ids["oops.png"]]  # the planted one is the surest
    assert errors[ids["oops.png"]]["suggested_label_id"] == labels["red"].id
    assert len(errors) <= 4  # a short list of 33 images, not everything
    [leak] = by_kind(findings, "leakage")
    assert leak["run_id"] == run.id and leak["leak_count"] == 2
    assert {(p[0], p[1], p[2]) for p in leak["pairs"]} == {
        (ids["red0.png"], ids["red0.png"], "same image"), (ids["dup.jpg"], ids["red0.png"], "near-duplicate")}
    assert [f["images"] for f in by_kind(findings, "tiny")] == [[ids["tiny.png"]]]
    assert [f["images"] for f in by_kind(findings, "corrupt")] == [[ids["broken.png"]]]
    assert [f["class"] for f in by_kind(findings, "small_class")] == ["purple"]

    page = logged_in.get(f"/datasets/{dataset.id}/health")
    assert b"hx-trigger" not in page.data and b"look like the same picture" in page.data
    assert f'/datasets/{dataset.id}/images/{ids["dup.jpg"]}/thumb'.encode() in page.data
    assert "Labeled “blue”, but looks like “red”".encode() in page.data
    assert b"leaky model" in page.data and b"cannot be opened" in page.data

    fix = f"/datasets/{dataset.id}/health/fix"
    relabel = logged_in.post(fix, data={"key": errors[ids["oops.png"]]["key"], "action": "relabel"}, headers=HX)
    assert relabel.status_code == 200 and b"Label changed." in relabel.data
    assert db.session.get(Image, ids["oops.png"]).label_id == labels["red"].id
    removed = logged_in.post(fix, data={"key": dup["key"], "action": "remove", "image_id": ids["dup.jpg"]})
    assert removed.status_code == 302 and db.session.get(Image, ids["dup.jpg"]) is None
    logged_in.post(fix, data={"key": leak["key"], "action": "ignore"})
    shown = {f["key"] for f in health_page(dataset.id)["findings"]}
    assert not shown & {dup["key"], leak["key"], errors[ids["oops.png"]]["key"]}
    assert leak["key"] in load_health(dataset.id)["ignored"]

    # a second check reuses the stored features, keeps the ignore, and no longer sees the duplicate
    from app.storage import get_storage

    stored = sorted(get_storage().feature_dir(dataset.id).rglob("seg-*.npy"))
    assert stored  # the first check kept the dataset's features
    logged_in.post(f"/datasets/{dataset.id}/health/check")
    run_jobs(app)
    assert sorted(get_storage().feature_dir(dataset.id).rglob("seg-*.npy")) == stored  # nothing recomputed
    again = {f["key"] for f in health_page(dataset.id)["findings"]}
    assert not by_kind(health_page(dataset.id)["findings"], "duplicate") and leak["key"] not in again


def hand_report(dataset_id: int, findings: list[dict]) -> None:
    """Store a finished report without running the check (for the fix/access rules)."""
    from app.blueprints.datasets.health.services import update_health

    report = {"created": "2024-01-01T00:00:00Z", "image_count": 2, "findings": findings}
    update_health(dataset_id, lambda s: s.update(state="done", report=report))


@pytest.fixture
def shared(app, client, make_user):
    """alice's dataset with two labelled images, a stored report (a duplicate pair, a label error),
    shared with 'vic' as viewer; 'eve' is a stranger. Nobody is logged in."""
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.images.services import set_labels
    from app.blueprints.datasets.services import create_dataset
    from app.blueprints.datasets.sharing import share_dataset

    alice, _, _ = make_user("alice"), make_user("vic"), make_user("eve")
    dataset = create_dataset(alice.id, "Shared")
    cats, dogs = add_class(dataset.id, "cats"), add_class(dataset.id, "dogs")
    login(client, "alice")
    results = upload(client, dataset.id, [(f"{i}.png", image_bytes(noise=i + 1)) for i in range(2)]).json["results"]
    a, b = (r["image_id"] for r in results)
    set_labels(dataset.id, [a, b], cats.id, alice.id)
    share_dataset(dataset, "vic", "viewer")
    client.post("/logout")
    hand_report(dataset.id, [
        {"key": "duplicate:x", "kind": "duplicate", "images": [a, b], "similarity": 0.99},
        {"key": "label:y", "kind": "label_error", "images": [b], "given_label_id": cats.id,
         "suggested_label_id": dogs.id, "confidence": 0.9}])
    return {"d": dataset.id, "a": a, "b": b, "dogs": dogs.id}


def test_viewer_sees_report_but_cannot_check_or_fix(client, shared):
    login(client, "vic")
    page = client.get(f"/datasets/{shared['d']}/health")
    assert page.status_code == 200 and b"look like the same picture" in page.data
    assert b"/health/fix" not in page.data and b"/health/check" not in page.data
    # no buttons, but told why, once above the findings: who can act on them
    assert page.get_data(as_text=True).count("its owner or an editor can move, remove or ignore images here") == 1
    refused = [client.post(f"/datasets/{shared['d']}/health/check"),
               client.post(f"/datasets/{shared['d']}/health/fix", data={"key": "label:y", "action": "relabel"}),
               client.post(f"/datasets/{shared['d']}/health/fix", data={"key": "duplicate:x", "action": "ignore"})]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert db.session.get(Image, shared["b"]).label_id != shared["dogs"]
    client.post("/logout")
    login(client, "alice")  # the owner has the buttons, and no such note
    assert b"its owner or an editor can" not in client.get(f"/datasets/{shared['d']}/health").data


def test_stranger_gets_404(client, shared):
    login(client, "eve")
    assert client.get(f"/datasets/{shared['d']}/health").status_code == 404
    assert client.post(f"/datasets/{shared['d']}/health/check").status_code == 404
    fix = client.post(f"/datasets/{shared['d']}/health/fix", data={"key": "duplicate:x", "action": "remove",
                                                                   "image_id": shared["a"]})
    assert fix.status_code == 404 and db.session.get(Image, shared["a"]) is not None


def test_ignore_hides_and_bad_fixes_are_refused(client, shared):
    from app.blueprints.datasets.health.services import health_page

    login(client, "alice")
    fix = f"/datasets/{shared['d']}/health/fix"
    wrong = client.post(fix, data={"key": "label:y", "action": "remove", "image_id": shared["b"]}, headers=HX)
    assert wrong.status_code == 422 and b"does not apply" in wrong.data
    outsider = client.post(fix, data={"key": "duplicate:x", "action": "remove", "image_id": 999999}, headers=HX)
    assert outsider.status_code == 422
    assert client.post(fix, data={"key": "nope", "action": "ignore"}, headers=HX).status_code == 404
    assert db.session.get(Image, shared["b"]) is not None
    ignored = client.post(fix, data={"key": "label:y", "action": "ignore"}, headers=HX)
    assert ignored.status_code == 200 and b"looks like" not in ignored.data
    assert [f["key"] for f in health_page(shared["d"])["findings"]] == ["duplicate:x"]
    assert b"look like the same picture" in ignored.data and b"1 hidden" in ignored.data


def test_check_on_empty_dataset_is_refused_and_dead_job_shows_failed(app, logged_in):
    from app.blueprints.datasets.health.services import current_state, update_health
    from app.blueprints.datasets.services import create_dataset

    dataset = create_dataset(logged_in.user.id, "Empty")
    refused = logged_in.post(f"/datasets/{dataset.id}/health/check", headers=HX)
    assert refused.status_code == 422 and b"no images yet" in refused.data
    update_health(dataset.id, lambda s: s.update(state="running", job_id="health-gone"))
    assert current_state(dataset.id)["state"] == "failed"
    assert b"stopped unexpectedly" in logged_in.get(f"/datasets/{dataset.id}/health").data


def test_fixes_can_be_undone(client, shared):
    import re

    login(client, "alice")
    fix = f"/datasets/{shared['d']}/health/fix"
    relabel = client.post(fix, data={"key": "label:y", "action": "relabel"}, headers=HX).get_data(as_text=True)
    assert "Label changed." in relabel and "data-undo" in relabel
    undo_url = re.search(r'action="(/datasets/\d+/images/undo/\d+)"', relabel).group(1)
    back = client.post(undo_url, data={"next": f"/datasets/{shared['d']}/health"})
    assert back.status_code == 302 and back.headers["Location"].endswith(f"/datasets/{shared['d']}/health")
    assert db.session.get(Image, shared["b"]).label_id != shared["dogs"]  # cats again
    removed = client.post(fix, data={"key": "duplicate:x", "action": "remove", "image_id": shared["a"]})
    assert removed.status_code == 302 and "undo=" in removed.headers["Location"]
    page = client.get(removed.headers["Location"]).get_data(as_text=True)
    undo_url = re.search(r'action="(/datasets/\d+/images/undo/\d+)"', page).group(1)
    assert client.post(undo_url, data={"next": "https://elsewhere.example/"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Image, shared["a"]) is not None  # restored


def test_a_failed_check_says_why_in_the_readers_language_and_hides_server_internals(app, logged_in):
    from app.blueprints.datasets.health.services import record_failure
    from app.blueprints.datasets.services import create_dataset
    from app.ml.errors import NotTrainable
    from app.ml.words import N_

    dataset = create_dataset(logged_in.user.id, "Broken")
    record_failure(dataset.id, OSError("/srv/studio/secret-path/x.npy is unreadable"))
    page = logged_in.get(f"/datasets/{dataset.id}/health", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "un problema inesperado en el servidor" in page and "secret-path" not in page
    record_failure(dataset.id, NotTrainable.because(N_("At least two classes are needed.")))
    page = logged_in.get(f"/datasets/{dataset.id}/health", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Se necesitan al menos dos clases." in page
