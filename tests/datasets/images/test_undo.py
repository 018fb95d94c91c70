"""Undo on the labeling grid: labels come back, deleted images come back (quota counted again, files kept
until the offer runs out), only for the user who acted, only for a while."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from app.extensions import db
from app.models import Image, PendingFileRemoval, TrashedImage, UndoAction, User, utcnow
from tests.conftest import login
from tests.datasets.conftest import expire_undo, png, upload

HX = {"HX-Request": "true"}


def _images(client, dataset_id: int, n: int) -> list[int]:
    return [r["image_id"] for r in upload(client, dataset_id, [(f"{i}.png", png(i)) for i in range(n)]).json["results"]]


def _undo_id(html: str) -> int:
    return int(re.search(r'/images/undo/(\d+)"', html).group(1))


def _counters(user_id: int) -> tuple[int, int]:
    return db.session.execute(select(User.image_count, User.image_bytes).where(User.id == user_id)).one()


def test_undo_puts_the_previous_labels_back(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    ants, bees = add_class(dataset.id, "ants"), add_class(dataset.id, "bees")
    ids = _images(logged_in, dataset.id, 3)
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": ids[:1], "label_id": ants.id})
    response = logged_in.post(f"/datasets/{dataset.id}/images/label", headers=HX,
                              data={"image_ids": ids, "label_id": bees.id, "filter": "all"})
    html = response.get_data(as_text=True)
    assert "3 images labeled." in html and "data-undo" in html
    undo_url = f"/datasets/{dataset.id}/images/undo/{_undo_id(html)}"
    response = logged_in.post(undo_url, headers=HX, data={"filter": "all"})
    assert response.status_code == 200 and "3 images have their previous class again" in response.get_data(as_text=True)
    db.session.expire_all()
    assert [db.session.get(Image, i).label_id for i in ids] == [ants.id, None, None]
    assert db.session.get(Image, ids[0]).label_source == "user"
    again = logged_in.post(undo_url, headers=HX)  # once only
    assert again.status_code == 404 and "can no longer be undone" in again.get_data(as_text=True)


def test_undo_restores_deleted_images_with_their_quota_and_files(app, logged_in, dataset):
    from app.blueprints.datasets.classes import add_class
    from app.filestore import image_key
    from app.storage import get_storage

    cats = add_class(dataset.id, "cats")
    ids = _images(logged_in, dataset.id, 3)
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": ids[:2], "label_id": cats.id})
    before = _counters(logged_in.user.id)
    shas = {i: db.session.get(Image, i).sha256 for i in ids}
    response = logged_in.post(f"/datasets/{dataset.id}/images/delete", headers=HX, data={"image_ids": ids[:2]})
    assert "2 images deleted." in response.get_data(as_text=True)
    assert _counters(logged_in.user.id) == (1, len(png(2)))  # the room is given back at once
    assert all(get_storage().exists(image_key(shas[i])) for i in ids)
    response = logged_in.post(f"/datasets/{dataset.id}/images/undo/{_undo_id(response.get_data(as_text=True))}",
                              headers=HX)
    assert "2 images restored." in response.get_data(as_text=True)
    db.session.expire_all()
    restored = {i.id: i for i in db.session.scalars(select(Image).where(Image.dataset_id == dataset.id))}
    assert set(restored) == set(ids)  # the same ids: links and feature caches stay valid
    assert [restored[i].label_id for i in ids] == [cats.id, cats.id, None]
    assert restored[ids[0]].filename == "0.png" and restored[ids[0]].sha256 == shas[ids[0]]
    assert _counters(logged_in.user.id) == before
    assert db.session.scalar(select(func.count(TrashedImage.id))) == 0
    thumb = logged_in.get(f"/datasets/{dataset.id}/images/{ids[0]}/thumb")
    assert thumb.status_code == 200
    thumb.close()


def test_an_expired_delete_removes_the_files_and_cannot_be_undone(app, logged_in, dataset):
    from app.filestore import image_key
    from app.storage import get_storage

    ids = _images(logged_in, dataset.id, 2)
    sha = db.session.get(Image, ids[0]).sha256
    response = logged_in.post(f"/datasets/{dataset.id}/images/delete", headers=HX, data={"image_ids": ids[:1]})
    undo_id = _undo_id(response.get_data(as_text=True))
    db.session.get(UndoAction, undo_id).created_at = utcnow() - timedelta(seconds=app.config["UNDO_SECONDS"] + 1)
    db.session.commit()
    response = logged_in.post(f"/datasets/{dataset.id}/images/undo/{undo_id}", headers=HX)
    assert response.status_code == 404
    assert expire_undo() == 1
    assert not get_storage().exists(image_key(sha))
    assert db.session.scalar(select(func.count(PendingFileRemoval.id))) == 0
    assert db.session.get(Image, ids[0]) is None


def test_undo_that_no_longer_fits_the_quota_is_refused_and_changes_nothing(app, logged_in, dataset):
    ids = _images(logged_in, dataset.id, 2)
    response = logged_in.post(f"/datasets/{dataset.id}/images/delete", headers=HX, data={"image_ids": ids})
    undo_id = _undo_id(response.get_data(as_text=True))
    upload(logged_in, dataset.id, [("new.png", png(50))])
    logged_in.user.quota_images = 2
    db.session.commit()
    response = logged_in.post(f"/datasets/{dataset.id}/images/undo/{undo_id}", headers=HX)
    assert response.status_code == 403 and "The images stay deleted" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset.id)) == 1
    assert _counters(logged_in.user.id)[0] == 1
    assert db.session.get(UndoAction, undo_id) is not None  # still there to try again after making room


def test_only_the_user_who_acted_can_undo(app, client, logged_in, dataset, make_user):
    from app.blueprints.datasets.sharing import share_dataset

    ids = _images(logged_in, dataset.id, 1)
    response = logged_in.post(f"/datasets/{dataset.id}/images/delete", headers=HX, data={"image_ids": ids})
    undo_id = _undo_id(response.get_data(as_text=True))
    make_user("ed")
    share_dataset(dataset, "ed", "editor")
    other = app.test_client()
    login(other, "ed")
    assert other.post(f"/datasets/{dataset.id}/images/undo/{undo_id}", headers=HX).status_code == 404
    assert db.session.get(UndoAction, undo_id) is not None


def test_an_image_uploaded_again_meanwhile_is_not_doubled(logged_in, dataset):
    ids = _images(logged_in, dataset.id, 2)
    response = logged_in.post(f"/datasets/{dataset.id}/images/delete", headers=HX, data={"image_ids": ids})
    upload(logged_in, dataset.id, [("again.png", png(0))])
    response = logged_in.post(f"/datasets/{dataset.id}/images/undo/{_undo_id(response.get_data(as_text=True))}",
                              headers=HX)
    assert "1 image restored." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset.id)) == 2
    assert _counters(logged_in.user.id)[0] == 2


def test_the_label_page_does_not_call_an_undoable_delete_final_and_lists_the_undo_key(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    add_class(dataset.id, "ants")
    _images(logged_in, dataset.id, 1)
    html = logged_in.get(f"/datasets/{dataset.id}/label").get_data(as_text=True)
    delete_button = re.search(r"<button[^>]*data-delete[^>]*>", html, re.S).group(0)
    assert "confirm" not in delete_button  # undone from the toast instead, as labeling is
    assert "cannot be undone" not in html
    assert "(asks first)" not in html
    assert "<kbd>z</kbd> undo the last change" in html


def test_undo_payloads_keep_runs_of_ids_and_read_the_older_plain_rows():
    from app.blueprints.datasets.images.undo import packed, unpacked

    rows = [[7, "user", 1, None], [3, "user", 1, None], [4, "user", 1, None], [5, "suggestion", 1, 9],
            [6, "user", 1, None], [10, "user", 1, None]]
    groups = packed(rows)
    assert groups == [[["user", 1, None], [[3, 4], [6, 7], [10, 10]]], [["suggestion", 1, 9], [[5, 5]]]]
    assert sorted(unpacked({"groups": groups})) == sorted(rows)
    assert unpacked(rows) == rows and unpacked({"label": {}, "images": rows}) == rows  # recorded before packing


def test_a_large_class_is_remembered_in_a_small_payload_and_comes_back_whole(logged_in, dataset):
    """A class of a folder import: its undo payload is a few runs of ids (it was every id, ~5 MB at
    200,000 images, read whenever the classes page offered the undo)."""
    import json

    from sqlalchemy import insert

    from app.blueprints.datasets.classes import add_class

    ants = add_class(dataset.id, "ants")
    user_id = logged_in.user.id
    db.session.execute(insert(Image), [{"dataset_id": dataset.id, "sha256": f"{i:064x}", "filename": f"{i}.jpg",
                                        "label_id": ants.id, "label_source": "user", "labeled_by_id": user_id}
                                       for i in range(3000)])
    db.session.commit()
    deleted = logged_in.post(f"/datasets/{dataset.id}/classes/{ants.id}/delete", headers=HX)
    assert "3,000 images are now unlabeled" in deleted.get_data(as_text=True)
    action = db.session.scalar(select(UndoAction).where(UndoAction.kind == "class"))
    assert action.count == 3000 and len(json.dumps(action.payload)) < 300
    undone = logged_in.post(f"/datasets/{dataset.id}/images/undo/{action.id}", headers=HX)
    assert undone.status_code == 200
    back = db.session.execute(select(Image.label_source, Image.labeled_by_id, func.count())
                              .where(Image.label_id.is_not(None)).group_by(Image.label_source, Image.labeled_by_id))
    assert back.all() == [("user", user_id, 3000)]
