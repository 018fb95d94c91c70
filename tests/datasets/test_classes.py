"""Classes management: add, rename, recolour, reorder, delete (images stay, unlabeled)."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Image, Label
from tests.datasets.conftest import png, upload

HX = {"HX-Request": "true"}


def _images(client, dataset_id: int, n: int) -> list[int]:
    results = upload(client, dataset_id, [(f"{i}.png", png(i)) for i in range(n)]).json["results"]
    return [r["image_id"] for r in results]


def test_delete_class_leaves_images_unlabeled(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    label = add_class(dataset.id, "ants")
    ids = _images(logged_in, dataset.id, 2)
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": ids, "label_id": label.id})
    page = logged_in.post(f"/datasets/{dataset.id}/classes/{label.id}/delete", follow_redirects=True)
    assert b"Class deleted; 2 images are now unlabeled." in page.data
    db.session.expire_all()
    assert db.session.get(Label, label.id) is None
    assert [db.session.get(Image, i).label_id for i in ids] == [None, None]


def test_add_rename_recolour_and_reorder_classes(logged_in, dataset):
    url = f"/datasets/{dataset.id}/classes"
    for name in ("ants", "bees"):
        assert logged_in.post(url, data={"name": name}).status_code == 302
    clash = logged_in.post(url, data={"name": "ANTS"}, headers=HX)
    assert clash.status_code == 409 and b"already a class called" in clash.data
    ants, bees = db.session.scalars(select(Label).order_by(Label.position)).all()
    response = logged_in.post(f"{url}/{ants.id}", data={"name": "Ants!", "color": "#112233"}, headers=HX)
    assert response.status_code == 200 and b"Class &#39;Ants!&#39; saved." in response.data
    logged_in.post(f"{url}/{bees.id}", data={"move": "up"})
    db.session.expire_all()
    assert [lab.name for lab in db.session.scalars(select(Label).order_by(Label.position))] == ["bees", "Ants!"]
    assert db.session.get(Label, ants.id).color == "#112233"
