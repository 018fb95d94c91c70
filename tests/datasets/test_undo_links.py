"""Undo writes back who labeled an image and which model suggested its class. A model deleted for good, or an
account deleted, since the action was recorded must not be written back: its foreign key would refuse the
whole undo (a 500), so the link is let go and the rest is restored."""
from __future__ import annotations

import re

from sqlalchemy import delete, update

from app.blueprints.datasets.classes import add_class
from app.extensions import db
from app.models import Image, TrainingRun, User
from tests.datasets.conftest import png, upload
from tests.training.test_pages import make_run

HX = {"HX-Request": "true"}


def _undo_action(html: str) -> str:
    return re.search(r'<form method="post" action="([^"]+/images/undo/\d+)"', html)[1]


def _labeled_by_a_model_and_a_colleague(logged_in, dataset, make_user, count: int):
    ants = add_class(dataset.id, "ants")
    ids = [r["image_id"] for r in upload(logged_in, dataset.id, [(f"{i}.png", png(i)) for i in range(count)])
           .json["results"]]
    model, colleague = make_run(dataset, logged_in.user).id, make_user("bob").id
    db.session.execute(update(Image).where(Image.id.in_(ids)).values(
        label_id=ants.id, label_source="model", labeled_by_id=colleague, label_model_id=model))
    db.session.commit()
    return ants, ids, model, colleague


def _gone_for_good(model: int, colleague: int) -> None:
    db.session.execute(delete(TrainingRun).where(TrainingRun.id == model))
    db.session.execute(delete(User).where(User.id == colleague))
    db.session.commit()


def test_undoing_a_class_delete_lets_go_of_links_to_a_purged_model_and_a_deleted_account(
        logged_in, dataset, make_user):
    ants, ids, model, colleague = _labeled_by_a_model_and_a_colleague(logged_in, dataset, make_user, 2)
    page = logged_in.post(f"/datasets/{dataset.id}/classes/{ants.id}/delete", headers=HX).get_data(as_text=True)
    _gone_for_good(model, colleague)
    assert logged_in.post(_undo_action(page), data={"next": f"/datasets/{dataset.id}/classes"}).status_code == 302
    db.session.expire_all()
    images = [db.session.get(Image, i) for i in ids]
    assert [(i.label_id, i.label_source, i.labeled_by_id, i.label_model_id) for i in images] == \
        [(ants.id, "model", None, None)] * 2


def test_undoing_an_image_delete_lets_go_of_the_same_links(logged_in, dataset, make_user):
    _ants, ids, model, colleague = _labeled_by_a_model_and_a_colleague(logged_in, dataset, make_user, 1)
    page = logged_in.post(f"/datasets/{dataset.id}/images/delete", data={"image_ids": ids}, headers=HX)
    undo_id = re.search(r'/images/undo/(\d+)"', page.get_data(as_text=True))[1]
    _gone_for_good(model, colleague)
    assert logged_in.post(f"/datasets/{dataset.id}/images/undo/{undo_id}", headers=HX).status_code == 200
    db.session.expire_all()
    image = db.session.get(Image, ids[0])
    assert image is not None and (image.labeled_by_id, image.label_model_id) == (None, None)
