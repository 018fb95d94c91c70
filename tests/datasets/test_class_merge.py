"""Merging two classes (the page, the API): the images of one move into the other, the emptied class is
deleted, and the merge can be undone for a while."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from app.extensions import db
from app.models import Image, Label
from tests.datasets.conftest import png, upload

HX = {"HX-Request": "true"}


def _labeled(client, dataset_id: int, label_id: int, n: int, start: int = 0) -> list[int]:
    results = upload(client, dataset_id, [(f"{start + i}.png", png(start + i)) for i in range(n)]).json["results"]
    ids = [r["image_id"] for r in results]
    client.post(f"/datasets/{dataset_id}/images/label", data={"image_ids": ids, "label_id": label_id})
    return ids


def _undo_action(html: str) -> str:
    found = re.search(r'<form method="post" action="([^"]+/images/undo/\d+)"', html)
    assert found, html
    return found[1]


def test_merging_moves_the_images_deletes_the_class_and_can_be_undone(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    ants, Ants, bees = add_class(dataset.id, "ants"), add_class(dataset.id, "Ants (2)"), add_class(dataset.id, "bees")
    ants_id, twin_id, bees_id = ants.id, Ants.id, bees.id
    small = _labeled(logged_in, dataset.id, ants_id, 3)
    big = _labeled(logged_in, dataset.id, twin_id, 2, start=10)
    merged = logged_in.post(f"/datasets/{dataset.id}/classes/merge", data={"source": twin_id, "into": ants_id},
                            headers=HX)
    html = merged.get_data(as_text=True)
    assert merged.status_code == 200 and "“Ants (2)” merged into “ants”: 2 images moved." in html
    db.session.expire_all()
    assert db.session.get(Label, twin_id) is None
    assert {db.session.get(Image, i).label_id for i in small + big} == {ants_id}
    assert db.session.get(Image, big[0]).label_source == "user"  # who labeled it is kept
    # a reload still offers the undo, in words that say it was a merge
    assert "Class “Ants (2)” was merged into “ants”." in logged_in.get(f"/datasets/{dataset.id}/classes").get_data(
        as_text=True)
    # meanwhile one merged image is put into bees: undo leaves that choice alone, and ants keeps its own
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": [big[1]], "label_id": bees_id})
    undone = logged_in.post(_undo_action(html), data={"next": f"/datasets/{dataset.id}/classes"})
    assert undone.status_code == 302
    db.session.expire_all()
    assert db.session.get(Label, twin_id).name == "Ants (2)"
    assert [db.session.get(Image, i).label_id for i in small + big] == [ants_id] * 3 + [twin_id, bees_id]


def test_a_merge_that_cannot_be_done_changes_nothing(logged_in, dataset, make_user, client):
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.services import create_dataset

    ants, bees = add_class(dataset.id, "ants"), add_class(dataset.id, "bees")
    ants_id, bees_id = ants.id, bees.id
    _labeled(logged_in, dataset.id, ants_id, 2)
    url = f"/datasets/{dataset.id}/classes/merge"
    same = logged_in.post(url, data={"source": ants_id, "into": ants_id}, headers=HX)
    assert same.status_code == 422 and "Pick two different classes to merge." in same.get_data(as_text=True)
    missing = logged_in.post(url, data={"source": ants_id}, headers=HX)
    assert missing.status_code == 422
    other = create_dataset(make_user("olga").id, "Other", "")
    foreign = add_class(other.id, "cats").id
    assert logged_in.post(url, data={"source": ants_id, "into": foreign}, headers=HX).status_code == 404
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Image).where(Image.label_id == ants_id)) == 2
    assert db.session.get(Label, bees_id) is not None
    # the form is on the page for an editor, with both classes to pick from
    page = logged_in.get(f"/datasets/{dataset.id}/classes").get_data(as_text=True)
    assert "Merge two classes" in page and f'<option value="{bees_id}" data-name="bees" selected>' in page
    # the browser's question names the classes chosen (app.js reads these)
    assert f'<option value="{ants_id}" data-name="ants" data-count="2">' in page and "data-merge-confirm" in page

