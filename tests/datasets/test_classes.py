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
    assert clash.status_code == 409 and "already a class called “ants”." in clash.text  # as spelled
    ants, bees = db.session.scalars(select(Label).order_by(Label.position)).all()
    response = logged_in.post(f"{url}/{ants.id}", data={"name": "Ants!", "color": "#112233"}, headers=HX)
    assert response.status_code == 200 and "Class “Ants!” saved." in response.text
    renamed = logged_in.post(f"{url}/{bees.id}", data={"name": "ANTS!"}, headers=HX)
    assert renamed.status_code == 409 and "already a class called “Ants!”." in renamed.text
    logged_in.post(f"{url}/{bees.id}", data={"move": "up"})
    db.session.expire_all()
    assert [lab.name for lab in db.session.scalars(select(Label).order_by(Label.position))] == ["bees", "Ants!"]
    assert db.session.get(Label, ants.id).color == "#112233"


def _undo_form(html: str) -> tuple[str, str]:
    """The toast's Undo form: (its action, the page it comes back to)."""
    import re

    action = re.search(r'<form method="post" action="([^"]+/images/undo/\d+)"', html)
    back = re.search(r'name="next" value="([^"]+)"', html)
    assert action and back, html
    return action[1], back[1]


def test_a_deleted_class_comes_back_with_its_images_by_undo(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    ants, bees = add_class(dataset.id, "ants"), add_class(dataset.id, "bees")
    ids = _images(logged_in, dataset.id, 3)
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": ids, "label_id": ants.id})
    ants_id, colour, position = ants.id, ants.color, ants.position
    deleted = logged_in.post(f"/datasets/{dataset.id}/classes/{ants_id}/delete", headers=HX)
    html = deleted.get_data(as_text=True)
    assert deleted.status_code == 200 and "Class deleted; 3 images are now unlabeled." in html and "data-undo" in html
    action, back = _undo_form(html)
    assert back == f"/datasets/{dataset.id}/classes"
    # meanwhile one of its images is put into another class: undo leaves that choice alone
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": [ids[0]], "label_id": bees.id})
    undone = logged_in.post(action, data={"next": back})
    assert undone.status_code == 302 and undone.headers["Location"].endswith(back)
    page = logged_in.get(back).get_data(as_text=True)
    assert "Undone: class “ants” is back, with 2 images." in page
    db.session.expire_all()
    label = db.session.get(Label, ants_id)
    assert (label.name, label.color, label.position) == ("ants", colour, position)  # the same class, same id
    assert [db.session.get(Image, i).label_id for i in ids] == [bees.id, ants_id, ants_id]
    assert logged_in.post(action, data={"next": back}).status_code == 404  # not twice


def test_undo_of_a_class_deleted_without_scripts_and_one_added_again_meanwhile(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    ants = add_class(dataset.id, "ants")
    ids = _images(logged_in, dataset.id, 2)
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": ids, "label_id": ants.id})
    deleted = logged_in.post(f"/datasets/{dataset.id}/classes/{ants.id}/delete")
    assert deleted.status_code == 302
    page = logged_in.get(deleted.headers["Location"]).get_data(as_text=True)
    assert "Class deleted; 2 images are now unlabeled." in page and "data-undo" in page
    action, back = _undo_form(page)
    again = add_class(dataset.id, "ants")  # the user made it anew before undoing
    assert logged_in.post(action, data={"next": back}).status_code == 302
    db.session.expire_all()
    assert [db.session.get(Image, i).label_id for i in ids] == [again.id, again.id]
    assert db.session.scalar(select(db.func.count()).select_from(Label)) == 1


def test_a_reloaded_classes_page_still_offers_undo_until_it_is_used_or_too_old(logged_in, dataset):
    from datetime import timedelta

    from app.blueprints.datasets.classes import add_class
    from app.models import UndoAction

    url = f"/datasets/{dataset.id}/classes"
    ants, bees = add_class(dataset.id, "ants"), add_class(dataset.id, "bees")
    ants_id, bees_id = ants.id, bees.id
    assert "data-undo" not in logged_in.get(url).get_data(as_text=True)
    logged_in.post(f"{url}/{ants_id}/delete", headers=HX)
    logged_in.post(f"{url}/{bees_id}/delete", headers=HX)
    reloaded = logged_in.get(url).get_data(as_text=True)  # the toast is gone with the page, not the offer
    assert "Class “bees” was deleted." in reloaded and "data-undo" in reloaded  # the latest one
    action, back = _undo_form(reloaded)
    assert logged_in.post(action, data={"next": back}).status_code == 302
    after = logged_in.get(url).get_data(as_text=True)  # bees is back: now the one before it is offered
    assert "Class “ants” was deleted." in after and "“bees” was deleted" not in after
    db.session.execute(db.update(UndoAction).values(created_at=UndoAction.created_at - timedelta(days=1)))
    db.session.commit()
    assert "data-undo" not in logged_in.get(url).get_data(as_text=True)  # too old: no more offer


def test_adding_classes_updates_the_headers_train_button_out_of_band(logged_in, dataset):
    import re

    _images(logged_in, dataset.id, 2)
    url = f"/datasets/{dataset.id}/classes"
    assert "Train a model: add classes first" in logged_in.get(url).get_data(as_text=True)
    logged_in.post(url, data={"name": "ants"}, headers=HX)
    html = logged_in.post(url, data={"name": "bees"}, headers=HX).get_data(as_text=True)
    button = re.search(r'<a [^>]*id="train-button"[^>]*>[^<]*</a>', html)
    assert button and "hx-swap-oob" in button[0] and "Train a model: label images first" in button[0]
