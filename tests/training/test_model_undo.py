"""Deleting a model can be undone: hidden at once, restorable by whoever could delete it within the undo
window, then purged (files, samples, row) by the worker's maintenance, safely again after a crash."""
from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.filestore import run_key
from app.models import DatasetShare, Image, RunSample, TrainingRun, utcnow
from app.storage import get_storage
from tests.conftest import login
from tests.training.test_pages import METRICS, make_run

WINDOW = 120


@pytest.fixture
def undoable(app):
    app.config["DATASET_UNDO_SECONDS"] = WINDOW


def _token(user) -> dict:
    from app.blueprints.predict.tokens import create_token

    return {"Authorization": f"Bearer {create_token(user.id, 'tests')[1]}"}


def _backdate(run_id: int, seconds: float) -> None:
    """Pretend the run was deleted `seconds` ago."""
    db.session.execute(update(TrainingRun).where(TrainingRun.id == run_id)
                       .values(deleted_at=utcnow() - timedelta(seconds=seconds)))
    db.session.commit()


def _samples(run_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(RunSample).where(RunSample.run_id == run_id))


def test_a_deleted_model_is_gone_everywhere_until_its_undo_brings_it_back(undoable, logged_in, make_dataset):
    from app.blueprints.training.deletion import purge_deleted_runs

    user = logged_in.user
    dataset = make_dataset(user, {"red": 3, "blue": 3})
    run = make_run(dataset, user, metrics=METRICS, artifact_dir="x")
    other = make_run(dataset, user, name="other", metrics=METRICS)
    run_id, token = run.id, _token(user)
    get_storage().write(run_key(run_id, "model.pt"), b"weights")

    deleted = logged_in.post(f"/models/{run_id}/delete")
    assert deleted.status_code == 302 and deleted.headers["Location"].endswith(f"/models?deleted={run_id}")
    page = html.unescape(logged_in.get(deleted.headers["Location"]).get_data(as_text=True))
    assert "Model “pets” deleted." in page and "data-undo" in page and f'href="/models/{run_id}"' not in page
    for url in (f"/models/{run_id}", f"/models/{run_id}/results", f"/models/{run_id}/history.csv",
                f"/models/{run_id}/download/card", f"/models/{run_id}/try", f"/models/compare?a={run_id}&b={other.id}",
                f"/models/{run_id}/split"):
        assert logged_in.get(url).status_code == 404, url
    assert logged_in.post(f"/models/{run_id}/retry").status_code == 404
    assert run_id not in [r["id"] for r in logged_in.get("/api/v1/runs", headers=token).json["runs"]]
    assert run_id not in [m["id"] for m in logged_in.get("/api/v1/models", headers=token).json["models"]]
    assert logged_in.get(f"/api/v1/runs/{run_id}", headers=token).status_code == 404
    assert purge_deleted_runs() == 0 and get_storage().exists(run_key(run_id, "model.pt"))  # inside the window

    action = re.search(r'action="(/models/\d+/restore)"', page)[1]
    restored = logged_in.post(action)
    assert restored.status_code == 302 and restored.headers["Location"].endswith(f"/models/{run_id}")
    shown = html.unescape(logged_in.get(f"/models/{run_id}").get_data(as_text=True))
    assert "Model “pets” is back, as it was." in shown
    results = logged_in.get(f"/models/{run_id}/results").get_data(as_text=True)
    assert "75.0%" in results or "75%" in results
    assert logged_in.get(f"/models/{run_id}/history.csv").status_code == 200
    assert logged_in.get(f"/api/v1/runs/{run_id}/metrics", headers=token).json["accuracy"] == 0.75
    assert _samples(run_id) == 30 and get_storage().exists(run_key(run_id, "model.pt"))
    assert logged_in.post(action).status_code == 404  # not deleted any more: nothing to bring back


def test_restore_is_refused_to_others_and_after_the_window_then_the_purge_removes_everything(
        app, undoable, client, make_user, make_dataset):
    from app.blueprints.training.deletion import RESTORE_MARGIN_S, purge_deleted_runs, purge_run

    owner, viewer = make_user("alice"), make_user("bob")
    make_user("mallory")
    dataset = make_dataset(owner, {"red": 3, "blue": 3})
    db.session.add(DatasetShare(dataset_id=dataset.id, user_id=viewer.id, role="viewer"))
    run = make_run(dataset, owner, metrics=METRICS, artifact_dir="x")
    run_id = run.id
    get_storage().write(run_key(run_id, "model.pt"), b"weights")
    login(client, "alice")
    assert client.post(f"/models/{run_id}/delete").status_code == 302

    for name in ("bob", "mallory"):  # a viewer could not delete it, a stranger cannot see it
        other = app.test_client()
        login(other, name)
        refused = other.post(f"/models/{run_id}/restore")
        assert refused.status_code == 404 and b"can no longer be brought back" in refused.data
        assert "data-undo" not in other.get(f"/models?deleted={run_id}").get_data(as_text=True)

    _backdate(run_id, WINDOW - RESTORE_MARGIN_S + 1)  # the last seconds before the purge: no more undo
    assert client.post(f"/models/{run_id}/restore").status_code == 404
    assert purge_deleted_runs() == 0  # ... and no purge yet
    _backdate(run_id, WINDOW + 1)
    assert purge_deleted_runs() == 1  # the worker's maintenance
    db.session.expire_all()
    assert db.session.get(TrainingRun, run_id) is None and _samples(run_id) == 0
    assert not get_storage().exists(run_key(run_id, "model.pt"))
    assert purge_deleted_runs() == 0 and purge_run(run_id) is False  # twice is harmless
    assert client.post(f"/models/{run_id}/restore").status_code == 404


class Crash(RuntimeError):
    pass


def test_a_purge_cut_short_is_finished_by_the_next_pass(undoable, monkeypatch, logged_in, make_dataset):
    from app.blueprints.training import deletion

    user = logged_in.user
    dataset = make_dataset(user, {"red": 3, "blue": 3})
    parent = make_run(dataset, user, metrics=METRICS, artifact_dir="x")
    child = make_run(dataset, user, name="more", status="failed", continued_from_id=parent.id)
    image = db.session.scalars(select(Image).where(Image.dataset_id == dataset.id)).first()
    image.label_model_id, parent_id, child_id, image_id = parent.id, parent.id, child.id, image.id
    get_storage().write(run_key(parent_id, "model.pt"), b"weights")
    db.session.commit()
    assert logged_in.post(f"/models/{parent_id}/delete").status_code == 302
    retried = logged_in.post(f"/models/{child_id}/retry")  # it would need the deleted model's checkpoint
    assert retried.status_code == 409
    _backdate(parent_id, WINDOW + 1)

    class Exploding:  # the worker dies while removing the files
        def delete_prefix(self, prefix):
            raise Crash("killed")

    monkeypatch.setattr(deletion, "get_storage", lambda: Exploding())
    with pytest.raises(Crash):
        deletion.purge_deleted_runs()
    monkeypatch.undo()
    db.session.rollback()
    assert db.session.get(TrainingRun, parent_id).deleting and _samples(parent_id) == 30

    monkeypatch.setattr(deletion, "SAMPLE_CHUNK", 7)  # several short transactions
    assert deletion.purge_deleted_runs() == 1
    db.session.expire_all()
    assert db.session.get(TrainingRun, parent_id) is None and _samples(parent_id) == 0
    assert not get_storage().exists(run_key(parent_id, "model.pt"))
    assert db.session.get(Image, image_id).label_model_id is None and db.session.get(Image, image_id).label_id
    assert db.session.get(TrainingRun, child_id).continued_from_id is None and _samples(child_id) == 30


def test_with_no_undo_window_the_delete_purges_at_once(logged_in, make_dataset):
    user = logged_in.user
    run = make_run(make_dataset(user, {"red": 3, "blue": 3}), user, metrics=METRICS)
    run_id = run.id
    deleted = logged_in.post(f"/models/{run_id}/delete")
    assert deleted.headers["Location"].endswith("/models")
    assert db.session.get(TrainingRun, run_id) is None and _samples(run_id) == 0


def test_the_api_deletes_and_an_editor_restores(app, undoable, make_user, make_dataset):
    owner, editor, viewer = make_user("alice"), make_user("ed"), make_user("vic")
    dataset = make_dataset(owner, {"red": 3, "blue": 3})
    db.session.add_all([DatasetShare(dataset_id=dataset.id, user_id=editor.id, role="editor"),
                        DatasetShare(dataset_id=dataset.id, user_id=viewer.id, role="viewer")])
    run = make_run(dataset, owner, metrics=METRICS)
    run_id, api = run.id, app.test_client()
    as_owner, as_editor, as_viewer = _token(owner), _token(editor), _token(viewer)
    assert api.delete(f"/api/v1/runs/{run_id}", headers=as_owner, csrf=False).status_code == 204
    assert api.get(f"/api/v1/runs/{run_id}", headers=as_owner).status_code == 404
    refused = api.post(f"/api/v1/runs/{run_id}/restore", headers=as_viewer, csrf=False)
    assert refused.status_code == 404 and refused.json["code"] == "not_found"
    assert api.post(f"/api/v1/runs/{run_id}/restore", csrf=False).status_code == 401
    restored = api.post(f"/api/v1/runs/{run_id}/restore", headers=as_editor, csrf=False)
    assert restored.status_code == 200 and restored.json["id"] == run_id and restored.json["status"] == "succeeded"
    assert api.get(f"/api/v1/runs/{run_id}", headers=as_owner).status_code == 200
    paths = api.get("/api/openapi.json").json["paths"]
    assert "post" in paths["/api/v1/runs/{run_id}/restore"]


def test_a_deleted_model_frees_its_quota_room_and_a_full_quota_keeps_it_deleted(undoable, logged_in, make_dataset):
    user = logged_in.user
    user.quota_models = 1
    dataset = make_dataset(user, {"red": 3, "blue": 3})
    first = make_run(dataset, user, metrics=METRICS)
    first_id = first.id
    assert logged_in.post(f"/models/{first_id}/delete").status_code == 302
    make_run(dataset, user, name="second", metrics=METRICS)  # takes the room the delete gave back
    refused = logged_in.post(f"/models/{first_id}/restore")
    assert refused.status_code == 403 and b"The model stays deleted." in refused.data
    db.session.expire_all()
    assert db.session.get(TrainingRun, first_id).deleting


def test_an_editor_restoring_into_a_full_quota_is_told_whose_it_is(app, undoable, make_user, make_dataset):
    owner, editor = make_user("alice"), make_user("ed")
    owner.quota_models = 1
    dataset = make_dataset(owner, {"red": 3, "blue": 3})
    db.session.add(DatasetShare(dataset_id=dataset.id, user_id=editor.id, role="editor"))
    first_id = make_run(dataset, owner, metrics=METRICS).id
    client = app.test_client()
    login(client, "ed")
    assert client.post(f"/models/{first_id}/delete").status_code == 302
    make_run(dataset, owner, name="second", metrics=METRICS)
    refused = html.unescape(client.post(f"/models/{first_id}/restore").get_data(as_text=True))
    assert refused.count("alice, who trained this model, has no room for another model") == 1
    assert "You have" not in refused  # the quota is alice's, not the editor's
    db.session.expire_all()
    assert db.session.get(TrainingRun, first_id).deleting


def test_the_admins_recent_runs_leave_out_a_model_being_deleted(undoable, client, make_user, make_dataset):
    admin = make_user("root", is_admin=True)
    dataset = make_dataset(admin, {"red": 3, "blue": 3})
    make_run(dataset, admin, name="kept one")
    hidden = make_run(dataset, admin, name="hidden one")
    login(client, "root")
    assert client.post(f"/models/{hidden.id}/delete").status_code == 302
    page = client.get("/admin/queue").get_data(as_text=True)
    assert "kept one" in page and "hidden one" not in page  # its link would be a 404


def test_a_purged_model_is_nobodys_default_any_more(logged_in, make_dataset):
    """SQLite gives a freed highest id to the next new row: a default left naming a purged model would name
    whichever model is trained next."""
    from app.blueprints.predict.services import INSTANCE_DEFAULT_KEY
    from app.models import Setting

    user = logged_in.user
    run = make_run(make_dataset(user, {"red": 3, "blue": 3}), user, metrics=METRICS)
    user.default_model_id = run.id
    db.session.add(Setting(key=INSTANCE_DEFAULT_KEY, value=run.id))
    db.session.commit()
    assert logged_in.post(f"/models/{run.id}/delete").status_code == 302  # no undo window here: purged at once
    db.session.expire_all()
    assert user.default_model_id is None and db.session.get(Setting, INSTANCE_DEFAULT_KEY).value is None
