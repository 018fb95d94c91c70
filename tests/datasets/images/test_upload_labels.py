"""Uploading images straight into a class (the camera panel does): the optional `label_id` of the upload
form, checked before anything is stored."""
from __future__ import annotations

import io

from sqlalchemy import func, select

from app.extensions import db
from app.models import Image
from tests.conftest import login, run_jobs, stored_files
from tests.datasets.conftest import make_zip, png


def _post(client, dataset_id: int, files: list[tuple[str, bytes]], label_id=None):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    if label_id is not None:
        data["label_id"] = str(label_id)
    return client.post(f"/datasets/{dataset_id}/upload", data=data, headers={"Accept": "application/json"},
                       content_type="multipart/form-data")


def _labels() -> list:
    return list(db.session.execute(select(Image.filename, Image.label_id, Image.label_source)
                                    .order_by(Image.filename)).all())


def _count() -> int:
    return db.session.scalar(select(func.count(Image.id)))


def test_images_land_in_the_chosen_class(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    cats = add_class(dataset.id, "cats")
    response = _post(logged_in, dataset.id, [("cam-1.jpg", png(1)), ("cam-2.jpg", png(2))], cats.id)
    assert response.status_code == 200
    assert [(r["status"], r["label"]) for r in response.json["results"]] == [("added", "cats")] * 2
    assert _labels() == [("cam-1.jpg", cats.id, "user"), ("cam-2.jpg", cats.id, "user")]
    page = logged_in.get(f"/datasets/{dataset.id}").data.decode()
    assert "2 images" in page.replace('<span class="big-number">2</span>', "2")


def test_an_empty_class_field_leaves_images_unlabeled(logged_in, dataset):
    response = _post(logged_in, dataset.id, [("a.png", png(3))], "")
    assert response.status_code == 200 and response.json["results"][0]["label"] is None
    assert _labels() == [("a.png", None, None)]


def test_a_class_of_another_dataset_is_refused_and_nothing_is_stored(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.services import create_dataset

    other = create_dataset(logged_in.user.id, "Other")
    foreign = add_class(other.id, "dogs")
    for label_id in (foreign.id, 999_999, "dogs", "-1"):
        response = _post(logged_in, dataset.id, [("a.png", png(4))], label_id)
        assert response.status_code == 404, label_id
        assert response.json["error"] == "This class does not exist in this dataset."
    assert _count() == 0 and stored_files() == []


def test_a_class_with_a_zip_is_refused_before_anything_is_stored(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    cats = add_class(dataset.id, "cats")
    archive = make_zip({"dogs/a.png": png(5)})
    response = _post(logged_in, dataset.id, [("b.png", png(6)), ("photos.zip", archive)], cats.id)
    assert response.status_code == 422 and "zip" in response.json["error"]
    assert _count() == 0 and stored_files() == []


def test_a_viewer_cannot_upload_even_into_a_class(client, make_user):
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.services import create_dataset
    from app.blueprints.datasets.sharing import share_dataset

    alice = make_user("alice")
    make_user("vic")
    dataset = create_dataset(alice.id, "Shared")
    cats = add_class(dataset.id, "cats")
    share_dataset(dataset, "vic", "viewer")
    login(client, "vic")
    response = _post(client, dataset.id, [("a.png", png(7))], cats.id)
    assert response.status_code == 403
    assert _count() == 0 and stored_files() == []


def test_a_large_labeled_batch_is_imported_in_the_background_into_the_class(app, logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    app.config["SYNC_UPLOAD_MAX_FILES"] = 2
    cats = add_class(dataset.id, "cats")
    response = _post(logged_in, dataset.id, [(f"cam-{i}.jpg", png(10 + i)) for i in range(4)], cats.id)
    assert response.status_code == 202 and response.json["import"]["kind"] == "files"
    run_jobs(app)
    assert logged_in.get(response.json["import"]["status_url"]).json["added"] == 4
    assert {label_id for _name, label_id, _source in _labels()} == {cats.id}
