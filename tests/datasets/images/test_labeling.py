"""Labeling grid, bulk label/unlabel/delete."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Image
from tests.datasets.conftest import png, upload

HX = {"HX-Request": "true"}


def _images(client, dataset_id: int, n: int) -> list[int]:
    results = upload(client, dataset_id, [(f"{i}.png", png(i)) for i in range(n)]).json["results"]
    return [r["image_id"] for r in results]


def test_bulk_label_and_unlabel_in_one_action(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    ants, bees = add_class(dataset.id, "ants"), add_class(dataset.id, "bees")
    ids = _images(logged_in, dataset.id, 4)
    response = logged_in.post(f"/datasets/{dataset.id}/images/label", headers=HX,
                              data={"image_ids": ids[:3], "label_id": bees.id, "filter": "all", "page": 1})
    assert response.status_code == 200
    html = response.data.decode()
    assert 'id="class-bar"' in html and 'hx-swap-oob="true"' in html  # counts update live
    assert "bees <span class=\"ds-chip-n\">3</span>" in html and "3 images labeled." in html
    labelled = db.session.scalars(select(Image).where(Image.label_id == bees.id)).all()
    assert sorted(i.id for i in labelled) == sorted(ids[:3])
    assert {(i.label_source, i.labeled_by_id) for i in labelled} == {("user", logged_in.user.id)}
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": ids[:2], "label_id": ""})
    db.session.expire_all()
    assert [db.session.get(Image, i).label_id for i in ids] == [None, None, bees.id, None]
    assert db.session.get(Image, ids[0]).label_source is None
    assert ants.id  # unused class stays


def test_bulk_label_refuses_images_of_another_dataset(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.services import create_dataset

    other = create_dataset(logged_in.user.id, "Other")
    label = add_class(dataset.id, "ants")
    mine, theirs = _images(logged_in, dataset.id, 1)[0], _images(logged_in, other.id, 1)[0]
    response = logged_in.post(f"/datasets/{dataset.id}/images/label", headers=HX,
                              data={"image_ids": [mine, theirs], "label_id": label.id})
    assert response.status_code == 404 and response.headers["HX-Retarget"] == "#flashes"
    assert db.session.get(Image, mine).label_id is None and db.session.get(Image, theirs).label_id is None
    foreign_label = add_class(other.id, "x")
    response = logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": [mine], "label_id": foreign_label.id})
    assert response.status_code == 404 and db.session.get(Image, mine).label_id is None
    empty = logged_in.post(f"/datasets/{dataset.id}/images/label", headers=HX, data={"label_id": label.id})
    assert empty.status_code == 422 and b"Select one or more images first." in empty.data


def test_grid_is_paginated_and_filtered(logged_in, dataset):
    from app.blueprints.datasets.images.services import image_page

    ids = _images(logged_in, dataset.id, 5)
    assert [p.page for p in [image_page(dataset.id, "all", 9, per_page=2)]] == [3]
    page = logged_in.get(f"/datasets/{dataset.id}/label?filter=unlabeled", headers=HX)
    assert page.status_code == 200 and b"<html" not in page.data
    assert page.data.count(b"data-tile") == 5
    full = logged_in.get(f"/datasets/{dataset.id}/label")
    assert b"<html" in full.data and b'id="image-grid"' in full.data
    assert len(ids) == 5


def test_delete_images_removes_rows_and_unused_files(logged_in, dataset):
    from app.storage import get_storage

    ids = _images(logged_in, dataset.id, 2)
    sha = db.session.get(Image, ids[0]).sha256
    response = logged_in.post(f"/datasets/{dataset.id}/images/delete", headers=HX, data={"image_ids": [ids[0]]})
    assert response.status_code == 200 and b"1 image deleted." in response.data
    assert db.session.get(Image, ids[0]) is None and db.session.get(Image, ids[1]) is not None
    assert not get_storage().image_path(sha).exists()
