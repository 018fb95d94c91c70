"""Admin -> Limits: site defaults, one user's overrides on the users page, top users of the last day."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.models import Dataset, TrainingRun, User, utcnow
from tests.conftest import login


@pytest.fixture
def admin_client(app, make_user):
    make_user("root", is_admin=True)
    client = app.test_client()
    login(client, "root")
    return client


def _form(**values) -> dict:
    base = {"storage_mb": "0", "images": "0", "datasets": "0", "models": "0", "active_runs": "0"}
    return {**base, **{k: str(v) for k, v in values.items()}}


def test_defaults_are_saved_and_apply_to_accounts_without_their_own(app, admin_client, make_user):
    from app.quotas import limits_for

    alice = make_user("alice")
    response = admin_client.post("/admin/limits", data=_form(images=500, datasets=2, active_runs=1))
    assert response.status_code == 302
    assert limits_for(alice).images == 500 and limits_for(alice).datasets == 2
    page = admin_client.get("/admin/limits").data.decode()
    assert 'name="images" value="500"' in page

    bad = admin_client.post("/admin/limits", data=_form(images="lots"))
    assert bad.status_code == 422 and "Images: enter a whole number" in bad.data.decode()


def test_an_override_on_the_users_page_wins_and_blank_means_the_default(app, admin_client, make_user):
    from app.blueprints.datasets.services import create_dataset
    from app.errors import QuotaExceeded
    from app.quotas import limits_for

    alice = make_user("alice")
    admin_client.post("/admin/limits", data=_form(datasets=1))
    create_dataset(alice.id, "one")
    with pytest.raises(QuotaExceeded, match="You have 1 dataset, your quota"):
        create_dataset(alice.id, "two")
    assert db.session.query(Dataset).count() == 1

    row = admin_client.post(f"/admin/users/{alice.id}/limits", headers={"HX-Request": "true"},
                            data={**_form(datasets=3), "images": ""})
    assert row.status_code == 200 and "Limits of alice saved." in row.data.decode()
    assert 'placeholder="default: no limit"' in row.data.decode()
    db.session.refresh(alice)
    assert (alice.quota_datasets, alice.quota_images) == (3, None)
    assert limits_for(alice).datasets == 3
    create_dataset(alice.id, "two")
    assert admin_client.get("/admin/users").status_code == 200


def test_non_admins_cannot_change_limits(app, logged_in):
    assert logged_in.post(f"/admin/users/{logged_in.user.id}/limits", data=_form(images=9)).status_code == 404
    assert logged_in.post("/admin/limits", data=_form(images=9)).status_code == 404


def test_top_users_by_storage_predictions_and_training_time(app, admin_client, make_user):
    from app.activity import record_predictions

    alice, bob = make_user("alice"), make_user("bob")
    db.session.execute(User.__table__.update().where(User.id == bob.id).values(image_count=3, image_bytes=5 * 2**20))
    db.session.execute(User.__table__.update().where(User.id == alice.id).values(image_count=1, image_bytes=2**20))
    dataset = Dataset(owner_id=alice.id, name="d")
    db.session.add(dataset)
    db.session.flush()
    now = utcnow()
    for user, minutes, ended in ((alice, 30, True), (bob, 90, True), (bob, 10, False)):
        db.session.add(TrainingRun(dataset_id=dataset.id, created_by_id=user.id, name="r", architecture="x",
                                   mode="scratch", status="succeeded" if ended else "running",
                                   started_at=now - timedelta(minutes=minutes + (5 if ended else 0)),
                                   finished_at=now - timedelta(minutes=5) if ended else None))
    db.session.add(TrainingRun(dataset_id=dataset.id, created_by_id=alice.id, name="old", architecture="x",
                               mode="scratch", status="succeeded", started_at=now - timedelta(days=3),
                               finished_at=now - timedelta(days=2)))
    db.session.commit()
    record_predictions(alice.id, "10.0.0.1", 40)
    record_predictions(None, "203.0.113.7", 7)
    record_predictions(alice.id, "10.0.0.1", 2)

    page = admin_client.get("/admin/limits").data.decode()
    storage, predictions, training = page.split("<h3>")[1:4]
    assert storage.index("bob") < storage.index("alice") and "5.0 MB" in storage
    assert "alice</strong> — 42 images" in predictions and "anonymous (203.0.113.7)</strong> — 7 images" in predictions
    assert "bob</strong> — 1 h 40 min" in training and "alice</strong> — 30 min" in training
    # an account being deleted (renamed until the worker removes it) is named as deleted, not by its placeholder
    db.session.execute(User.__table__.update().where(User.id == bob.id).values(
        username=f"deleted~{bob.id}~0123456789ab", deleted_at=utcnow(), is_disabled=True))
    db.session.commit()
    page = admin_client.get("/admin/limits").data.decode()
    assert "deleted~" not in page and "deleted account</strong> — 5.0 MB" in page

