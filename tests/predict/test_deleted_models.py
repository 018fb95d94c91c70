"""A model being deleted (restorable for a while, tests/training/test_model_undo.py) answers no prediction,
public or not, by id or as a default; restored, it answers again and is the default it was."""
from __future__ import annotations

import io

import pytest

from app.extensions import db
from app.models import User
from tests.conftest import login
from tests.predict.conftest import color_image


def _files() -> dict:
    return {"file": [(io.BytesIO(color_image("red", seed=7)), "red.png")]}


@pytest.fixture
def undoable(app):
    app.config["DATASET_UNDO_SECONDS"] = 120


def test_a_deleted_model_answers_nothing_until_restored_and_is_the_default_again(app, undoable, logged_in,
                                                                                  make_model):
    run = make_model(logged_in.user, public=True)
    run_id, anonymous = run.id, app.test_client()
    assert logged_in.post(f"/models/{run_id}/try/default", data={"use": "1"}).status_code == 302
    assert logged_in.post("/predict", data=_files()).json["model"]["id"] == run_id  # warm in the cache

    assert logged_in.post(f"/models/{run_id}/delete").status_code == 302
    for client, csrf in ((logged_in, True), (anonymous, False)):  # public does not help: it is gone
        refused = client.post("/predict", data={"model": str(run_id), **_files()}, csrf=csrf)
        assert refused.status_code == 404 and refused.json["code"] == "unknown_model"
        assert client.post(f"/models/{run_id}/predict", data=_files(), csrf=csrf).status_code == 404
    no_default = logged_in.post("/predict", data=_files())  # the default is skipped, as a deleted one always was
    assert no_default.status_code == 422 and no_default.json["code"] == "no_model"
    assert logged_in.post(f"/models/{run_id}/try/default", data={"use": "1"}).status_code == 404

    assert logged_in.post(f"/models/{run_id}/restore").status_code == 302
    answer = logged_in.post("/predict", data=_files())
    assert answer.status_code == 200 and answer.json["model"]["id"] == run_id
    assert answer.json["predictions"][0]["category"] == "red"
    assert anonymous.post("/predict", data={"model": str(run_id), **_files()}, csrf=False).status_code == 200


def test_a_default_chosen_meanwhile_stays_after_a_restore(app, undoable, logged_in, make_model):
    first, second = make_model(logged_in.user, name="first"), make_model(logged_in.user, name="second")
    first_id, second_id = first.id, second.id
    assert logged_in.post(f"/models/{first_id}/try/default", data={"use": "1"}).status_code == 302
    assert logged_in.post(f"/models/{first_id}/delete").status_code == 302
    assert logged_in.post("/predict", data=_files()).json["model"]["id"] == second_id  # the only one left
    assert logged_in.post(f"/models/{second_id}/try/default", data={"use": "1"}).status_code == 302
    assert logged_in.post(f"/models/{first_id}/restore").status_code == 302
    assert db.session.get(User, logged_in.user.id).default_model_id == second_id
    assert logged_in.post("/predict", data=_files()).json["model"]["id"] == second_id


def test_a_viewer_cannot_restore_a_model_someone_else_deleted(app, undoable, make_user, make_model):
    from app.models import DatasetShare

    owner, viewer = make_user("alice"), make_user("vic")
    run = make_model(owner)
    db.session.add(DatasetShare(dataset_id=run.dataset_id, user_id=viewer.id, role="viewer"))
    db.session.commit()
    run_id, client = run.id, app.test_client()
    login(client, "alice")
    assert client.post(f"/models/{run_id}/delete").status_code == 302
    login(client, "vic")
    assert client.post(f"/models/{run_id}/restore").status_code == 404
    assert client.post("/predict", data={"model": str(run_id), **_files()}).status_code == 404
