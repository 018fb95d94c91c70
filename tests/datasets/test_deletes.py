"""Deletes: image files and thumbnails go once nothing uses them, the dataset's cached features forget them; big deletes run in the
background and never send more than 500 ids in one statement; a lost dataset deletion is queued again."""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

from app.extensions import db
from app.models import Dataset, Image, Import, PendingFileRemoval, utcnow
from app.filestore import image_key, thumb_key
from app.storage import get_storage
from tests.conftest import run_jobs
from tests.datasets.conftest import expire_undo, png, upload


@contextmanager
def largest_statement():
    """Records the most parameters any SQL statement was sent with."""
    seen = {"max": 0}

    def count(conn, cursor, statement, parameters, context, executemany):
        if not executemany:
            seen["max"] = max(seen["max"], len(parameters or ()))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _feature_store(dataset_id: int):
    """An (empty) feature store folder of the dataset, as quick mode / health leave one."""
    from app.ml import feature_layout

    store = feature_layout.store_dir(get_storage().feature_dir(dataset_id), "efficientnet_lite0", 224, "imagenet-fp32")
    store.mkdir(parents=True)
    return store


def _forgotten(store) -> set[int]:
    return {int(line) for path in store.glob("forget-*.txt") for line in path.read_text().split()}


def test_deleting_images_removes_their_files_and_cached_features(app, logged_in, dataset):
    from app.blueprints.datasets.services import create_dataset

    shared = png(1)
    ids = [r["image_id"] for r in upload(logged_in, dataset.id, [("a.png", shared), ("b.png", png(2)),
                                                                  ("c.png", png(3))]).json["results"]]
    other = create_dataset(logged_in.user.id, "Other")
    upload(logged_in, other.id, [("a.png", shared)])
    shas = [db.session.get(Image, i).sha256 for i in ids]
    store = _feature_store(dataset.id)
    storage = get_storage()
    response = logged_in.post(f"/datasets/{dataset.id}/images/delete", data={"image_ids": ids[:2]})
    assert response.status_code == 302
    assert all(storage.exists(image_key(sha)) for sha in shas)  # kept while the delete can be undone
    assert expire_undo() == 1
    gone, kept = shas[1], shas[0]  # a.png is still used by the other dataset
    assert not storage.exists(image_key(gone)) and not storage.exists(thumb_key(gone))
    assert storage.exists(image_key(kept)) and storage.exists(image_key(shas[2]))
    assert _forgotten(store) == set(ids[:2])  # the dataset's cached features of both are dropped
    assert db.session.scalar(select(func.count(PendingFileRemoval.id))) == 0


def test_many_images_are_deleted_in_chunks_and_their_files_by_a_job(app, logged_in, dataset):
    app.config["DELETE_SYNC_MAX_FILES"] = 2
    results = upload(logged_in, dataset.id, [(f"{i}.png", png(i)) for i in range(4)]).json["results"]
    _add_rows(dataset.id, 1200)
    ids = [r["image_id"] for r in results] + list(db.session.scalars(
        select(Image.id).where(Image.filename.like("row%"))))
    shas = [db.session.get(Image, r["image_id"]).sha256 for r in results]
    with largest_statement() as seen:
        response = logged_in.post(f"/datasets/{dataset.id}/images/delete", data={"image_ids": ids},
                                  headers={"HX-Request": "true"})
    assert response.status_code == 200 and "1,204 images deleted." in response.data.decode()  # counts are written the locale's way
    assert seen["max"] <= 501  # 500 ids (+ the dataset id)
    assert db.session.scalar(select(func.count(Image.id))) == 0
    assert all(get_storage().exists(image_key(sha)) for sha in shas)  # kept for an undo, then the job...
    with largest_statement() as seen:
        assert expire_undo() == 1
    assert seen["max"] <= 501
    assert all(get_storage().exists(image_key(sha)) for sha in shas)
    run_jobs(app)
    assert not any(get_storage().exists(image_key(sha)) for sha in shas)  # ...here
    assert db.session.scalar(select(func.count(PendingFileRemoval.id))) == 0


def _add_rows(dataset_id: int, count: int) -> None:
    db.session.execute(Image.__table__.insert(), [
        {"dataset_id": dataset_id, "sha256": hashlib.sha256(b"%d" % i).hexdigest(), "filename": f"row{i}.png",
         "width": 1, "height": 1, "size_bytes": 1, "format": "PNG", "created_at": utcnow()} for i in range(count)])
    db.session.commit()


def test_a_large_dataset_is_deleted_by_a_job_in_chunks(app, logged_in, dataset):
    upload(logged_in, dataset.id, [("a.png", png(1))])
    _add_rows(dataset.id, 1300)
    dataset_id = dataset.id
    _feature_store(dataset_id)
    response = logged_in.post(f"/datasets/{dataset_id}/delete")
    assert response.status_code == 302
    assert db.session.scalar(select(func.count(Image.id))) == 1301  # nothing removed in the request
    with largest_statement() as seen:
        run_jobs(app)
    db.session.expire_all()
    assert db.session.get(Dataset, dataset_id) is None
    assert db.session.scalar(select(func.count(Image.id))) == 0
    assert seen["max"] <= 500
    assert not list(get_storage().list("images"))
    assert not get_storage().feature_dir(dataset_id).exists()


def test_a_dataset_cannot_be_deleted_while_an_import_runs(logged_in, dataset):
    db.session.add(Import(dataset_id=dataset.id, kind="zip", source_name="a.zip", status="running", errors=[],
                          started_at=utcnow(), heartbeat_at=utcnow()))
    db.session.commit()
    response = logged_in.post(f"/datasets/{dataset.id}/delete")
    assert response.status_code == 409 and b"Cancel the import first" in response.data
    assert db.session.get(Dataset, dataset.id).deleting is False


def test_a_deletion_whose_job_was_lost_is_queued_again(app, logged_in, dataset):
    from app.blueprints.datasets.deletion import requeue_stalled_deletions

    dataset_id = dataset.id
    db.session.execute(update(Dataset).where(Dataset.id == dataset_id).values(
        deleting=True, updated_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    assert logged_in.get(f"/datasets/{dataset_id}").status_code == 404
    assert requeue_stalled_deletions() == 1
    assert requeue_stalled_deletions() == 0  # its job is waiting now
    run_jobs(app)
    db.session.expire_all()
    assert db.session.get(Dataset, dataset_id) is None


def _backdate(dataset_id: int, seconds: float) -> None:
    """Pretend the dataset was deleted `seconds` ago."""
    db.session.execute(update(Dataset).where(Dataset.id == dataset_id)
                       .values(updated_at=utcnow() - timedelta(seconds=seconds)))
    db.session.commit()


def test_a_deleted_dataset_comes_back_by_undo_untouched(app, logged_in, dataset, make_user):
    import html
    import re

    from app.blueprints.datasets.deletion import requeue_stalled_deletions

    app.config["DATASET_UNDO_SECONDS"] = 120
    upload(logged_in, dataset.id, [("a.png", png(1)), ("b.png", png(2))])
    dataset_id, name = dataset.id, dataset.name
    deleted = logged_in.post(f"/datasets/{dataset_id}/delete")
    assert deleted.status_code == 302 and deleted.headers["Location"].endswith(f"/datasets?deleted={dataset_id}")
    page = html.unescape(logged_in.get(deleted.headers["Location"]).get_data(as_text=True))
    assert f"Dataset “{name}” was deleted." in page and "data-undo" in page
    assert f'href="/datasets/{dataset_id}"' not in page and logged_in.get(f"/datasets/{dataset_id}").status_code == 404
    assert requeue_stalled_deletions() == 0 and run_jobs(app) is None  # nothing removed inside the window
    other = app.test_client()  # someone else cannot bring it back, nor learn of it
    make_user("mallory")
    from tests.conftest import login

    login(other, "mallory")
    assert other.post(f"/datasets/{dataset_id}/restore").status_code == 404
    assert "data-undo" not in other.get(f"/datasets?deleted={dataset_id}").get_data(as_text=True)

    action = re.search(r'action="(/datasets/\d+/restore)"', page)[1]
    restored = logged_in.post(action)
    assert restored.status_code == 302 and restored.headers["Location"].endswith(f"/datasets/{dataset_id}")
    shown = html.unescape(logged_in.get(f"/datasets/{dataset_id}").get_data(as_text=True))
    assert f"Dataset “{name}” is back, as it was." in shown
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset_id)) == 2
    assert logged_in.post(action).status_code == 404  # not deleted any more: nothing to bring back


def test_past_the_undo_window_a_deleted_dataset_is_removed_and_cannot_come_back(app, logged_in, dataset):
    from app.blueprints.datasets.deletion import RESTORE_MARGIN_S, requeue_stalled_deletions

    app.config["DATASET_UNDO_SECONDS"] = 120
    dataset_id = dataset.id
    assert logged_in.post(f"/datasets/{dataset_id}/delete").status_code == 302
    _backdate(dataset_id, 120 - RESTORE_MARGIN_S + 1)  # the last seconds before removal: no more undo
    refused = logged_in.post(f"/datasets/{dataset_id}/restore")
    assert refused.status_code == 404 and b"can no longer be brought back" in refused.data
    assert requeue_stalled_deletions() == 0  # ... and no removal yet
    _backdate(dataset_id, 121)
    assert requeue_stalled_deletions() == 1  # the worker's maintenance queues it
    run_jobs(app)
    db.session.expire_all()
    assert db.session.get(Dataset, dataset_id) is None


@pytest.mark.parametrize("seconds, said", [(0, "This cannot be undone."), (120, "For 2 minutes you can still undo it"),
                                           (45, "For 45 seconds you can still undo it")])
def test_the_delete_page_says_for_how_long_a_delete_can_be_undone(app, logged_in, dataset, seconds, said):
    app.config["DATASET_UNDO_SECONDS"] = seconds
    html = logged_in.get(f"/datasets/{dataset.id}/delete").get_data(as_text=True)
    assert said in html and ("cannot be undone" in html) == (seconds == 0)
