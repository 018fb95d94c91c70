"""Deleting an account: Admin -> Users, the account page, `flask delete-user`; datasets deleted through the
datasets' own purge or given to another account, models on other people's datasets kept with no creator."""
from __future__ import annotations

import hashlib
import html

import pytest
from sqlalchemy import func, select

from app import quotas
from app.extensions import db
from app.filestore import image_key
from app.models import (ApiToken, Dataset, DatasetShare, Image, Label, TrainingRun, User, UserSession,
                        utcnow)
from app.storage import get_storage
from tests.conftest import flashes, image_bytes, login, run_jobs, stored_keys
from tests.training.test_pages import METRICS, make_run


def owned_dataset(owner, images: int = 3, name: str = "Birds", uploader=None):
    """A dataset of `owner` with generated images stored and counted against the owner's quota."""
    dataset = Dataset(owner_id=owner.id, name=name, description="")
    db.session.add(dataset)
    db.session.flush()
    label = Label(dataset_id=dataset.id, name="red")
    db.session.add(label)
    db.session.flush()
    total = 0
    for i in range(images):
        data = image_bytes((200, 30, 30), noise=i + 1 + 100 * dataset.id)
        sha = hashlib.sha256(data).hexdigest()
        get_storage().write(image_key(sha), data)
        by = (uploader or owner).id
        db.session.add(Image(dataset_id=dataset.id, sha256=sha, label_id=label.id, filename=f"{i}.png", width=32,
                             height=32, size_bytes=len(data), format="PNG", uploaded_by_id=by, labeled_by_id=by,
                             label_source="user"))
        total += len(data)
    assert quotas.reserve_images(owner.id, images, total)
    db.session.commit()
    return dataset


def share(dataset, user, role="viewer"):
    db.session.add(DatasetShare(dataset_id=dataset.id, user_id=user.id, role=role))
    db.session.commit()


def maintenance(app) -> None:
    """What the worker does: the queued dataset purges, then its maintenance pass."""
    from app.blueprints.auth.deletion import purge_deleted_accounts

    run_jobs(app)
    purge_deleted_accounts()


@pytest.fixture
def admin(client, make_user):
    client.user = make_user("root", is_admin=True)
    assert login(client, "root").status_code == 302
    return client


def _confirm(client, user, **form):
    return client.post(f"/admin/users/{user.id}/delete", data={"confirm_name": user.username, **form})


def test_admin_deletes_an_account_and_its_datasets_are_purged(app, admin, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    mine = owned_dataset(alice, 4)
    theirs = owned_dataset(bob, 2, name="Bob's")
    mine_id, alice_id = mine.id, alice.id
    share(theirs, alice, "editor")
    share(mine, bob)
    keys = stored_keys("images")
    page = admin.get(f"/admin/users/{alice.id}/delete").get_data(as_text=True)
    assert "1 dataset owned, with 4 images" in page and "Birds" in page and 'name="confirm_name"' in page
    response = _confirm(admin, alice)
    assert response.status_code == 302 and response.location.endswith("/admin/users")
    assert "The account alice and its datasets are deleted." in flashes(admin.get("/admin/users").data)
    assert db.session.get(Dataset, mine.id).deleting  # hidden at once
    assert "alice" not in admin.get("/admin/users").get_data(as_text=True)
    maintenance(app)
    assert db.session.get(Dataset, mine_id) is None and db.session.get(User, alice_id) is None
    assert db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == mine_id)) == 0
    assert len(stored_keys("images")) == len(keys) - 4  # bob's files stay, alice's are gone
    assert db.session.scalars(select(DatasetShare)).all() == []
    assert db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == theirs.id)) == 2
    assert quotas.usage_for(bob.id).images == 2


def test_transfer_gives_the_datasets_and_their_quota_to_the_receiver(app, admin, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    mine = owned_dataset(alice, 3)
    share(mine, bob, "editor")
    mine_id, alice_id = mine.id, alice.id
    response = _confirm(admin, alice, transfer_to=str(bob.id))
    assert response.status_code == 302
    maintenance(app)
    dataset = db.session.get(Dataset, mine_id)
    assert dataset is not None and not dataset.deleting and dataset.owner_id == bob.id
    assert db.session.scalars(select(DatasetShare)).all() == []  # bob owns it now: no share
    assert quotas.usage_for(bob.id).images == 3 and quotas.usage_for(bob.id).datasets == 1
    assert db.session.get(User, alice_id) is None
    assert set(db.session.scalars(select(Image.uploaded_by_id).where(Image.dataset_id == mine_id))) == {None}


def test_a_receiver_without_room_is_refused_and_nothing_changes(app, admin, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    mine = owned_dataset(alice, 3)
    owned_dataset(bob, 1, name="Bob's")
    bob.quota_images = 2
    db.session.commit()
    response = _confirm(admin, alice, transfer_to=str(bob.id))
    page = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "they hold 3 images" in page and "has room left for 1 image (" in page
    db.session.expire_all()
    assert db.session.get(Dataset, mine.id).owner_id == alice.id and not db.session.get(Dataset, mine.id).deleting
    assert db.session.get(User, alice.id).deleted_at is None and not db.session.get(User, alice.id).is_disabled
    assert quotas.usage_for(alice.id).images == 3 and quotas.usage_for(bob.id).images == 1
    bob.quota_images, bob.quota_datasets = None, 1
    db.session.commit()
    response = _confirm(admin, alice, transfer_to=str(bob.id))
    assert response.status_code == 403
    assert "of alice (1 dataset): the dataset quota of bob is 1 and they own 1" in response.get_data(as_text=True)


def test_a_model_trained_on_someone_elses_dataset_stays_with_no_creator(app, client, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    theirs = owned_dataset(bob, 2, name="Bob's")
    share(theirs, alice, "editor")
    kept = make_run(theirs, alice, metrics=METRICS, finished_at=utcnow(), name="alice-model")
    other = make_run(theirs, bob, metrics=METRICS, finished_at=utcnow(), name="bob-model")
    own = make_run(owned_dataset(alice, 1), alice, metrics=METRICS, name="gone")
    own_id, kept_id, other_id = own.id, kept.id, other.id
    assert login(client, "alice").status_code == 302
    page = html.unescape(client.get("/account/delete").get_data(as_text=True))
    assert "1 model trained on other people's datasets: it stays" in page
    assert client.post("/account/delete", data={"password": "correct horse"}).status_code == 302
    maintenance(app)
    assert db.session.get(TrainingRun, own_id) is None
    run = db.session.get(TrainingRun, kept_id)
    assert run is not None and run.created_by_id is None
    assert login(client, "bob").status_code == 302
    for url in ("/models", f"/models/{kept_id}", f"/models/{kept_id}/results",
                f"/models/compare?a={kept_id}&b={other_id}"):
        response = client.get(url)
        assert response.status_code == 200, url
    assert "a deleted user" in client.get(f"/models/{kept_id}").get_data(as_text=True)


def test_admin_queue_shows_a_run_with_no_creator(app, admin, make_user):
    bob = make_user("bob")
    run = make_run(owned_dataset(bob, 1), bob, metrics=METRICS)
    run.created_by_id = None
    db.session.commit()
    assert admin.get("/admin/queue").status_code == 200 and admin.get("/admin/").status_code == 200


def test_tokens_sessions_and_shares_end_at_once(app, client, admin, make_user):
    from flask.testing import FlaskClient  # noqa: F401 - a second browser below
    from app.blueprints.predict.tokens import create_token

    alice, bob = make_user("alice"), make_user("bob")
    share(owned_dataset(bob, 1), alice)
    _token, raw = create_token(alice.id, "script")
    alice_browser = app.test_client()
    assert login(alice_browser, "alice").status_code == 302
    headers = {"Authorization": f"Bearer {raw}"}
    assert alice_browser.get("/datasets").status_code == 200
    assert app.test_client().get("/api/v1/datasets", headers=headers).status_code == 200
    assert _confirm(admin, alice).status_code == 302
    assert alice_browser.get("/datasets").status_code == 302  # logged out
    assert app.test_client().get("/api/v1/datasets", headers=headers).status_code == 401
    assert db.session.scalars(select(ApiToken)).all() == []
    assert db.session.scalars(select(UserSession).where(UserSession.user_id == alice.id)).all() == []
    assert db.session.scalars(select(DatasetShare)).all() == []
    assert login(app.test_client(), "alice").status_code != 302


def test_refusals_last_admin_self_on_admin_page_busy_dataset(app, admin, make_user):
    root = admin.user
    response = admin.get(f"/admin/users/{root.id}/delete")
    assert response.status_code == 409 and "account page" in response.get_data(as_text=True)
    page = admin.get("/account/delete").get_data(as_text=True)
    assert "Delete my account" in page
    response = admin.post("/account/delete", data={"password": "correct horse"})
    assert response.status_code == 409 and "last enabled admin" in response.get_data(as_text=True)
    assert db.session.get(User, root.id).deleted_at is None
    alice = make_user("alice")
    busy = owned_dataset(alice, 1, name="Busy")
    make_run(busy, alice, status="queued")
    response = _confirm(admin, alice)
    assert response.status_code == 409 and "Busy" in response.get_data(as_text=True)
    assert not db.session.get(Dataset, busy.id).deleting
    response = admin.post(f"/admin/users/{alice.id}/delete", data={"confirm_name": "alic"})
    assert response.status_code == 422 and db.session.get(User, alice.id).deleted_at is None


def test_self_delete_needs_the_right_password(app, logged_in):
    alice = logged_in.user
    mine = owned_dataset(alice, 2)
    alice_id, mine_id = alice.id, mine.id
    response = logged_in.post("/account/delete", data={"password": "wrong"})
    assert response.status_code == 422 and "Your password is not right" in response.get_data(as_text=True)
    assert db.session.get(User, alice.id).deleted_at is None and not db.session.get(Dataset, mine.id).deleting
    response = logged_in.post("/account/delete", data={"password": "correct horse"})
    assert response.status_code == 302 and response.location.endswith("/")
    home = logged_in.get("/")
    assert home.status_code == 200 and "Your account and your datasets are deleted. Goodbye!" in flashes(home.data)
    assert logged_in.get("/datasets").status_code == 302
    maintenance(app)
    assert db.session.get(User, alice_id) is None and db.session.get(Dataset, mine_id) is None


def test_csrf_and_non_admins(app, client, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    app.config["WTF_CSRF_ENABLED"] = True
    assert login(client, "bob").status_code == 302
    assert client.get(f"/admin/users/{alice.id}/delete").status_code == 404
    assert client.post(f"/admin/users/{alice.id}/delete", data={"confirm_name": "alice"}).status_code == 404
    response = client.post("/account/delete", data={"password": "correct horse"}, csrf=False)
    assert response.status_code == 400 and db.session.get(User, bob.id).deleted_at is None


def test_admin_form_needs_csrf(app, admin, make_user):
    alice = make_user("alice")
    response = admin.post(f"/admin/users/{alice.id}/delete", data={"confirm_name": "alice"}, csrf=False)
    assert response.status_code == 400 and db.session.get(User, alice.id).deleted_at is None


def test_cli_delete_user(app, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    mine_id, alice_id, bob_id = owned_dataset(alice, 2).id, alice.id, bob.id
    runner = app.test_cli_runner()
    result = runner.invoke(args=["delete-user", "alice", "--transfer-to", "bob"], input="n\n")
    assert result.exit_code == 1 and "1 dataset owned, with 2 images (" in result.output
    assert "It goes to bob, with its models and shares." in result.output
    assert db.session.get(User, alice.id).deleted_at is None
    result = runner.invoke(args=["delete-user", "alice", "--transfer-to", "bob", "--yes"])
    assert result.exit_code == 0, result.output
    maintenance(app)
    assert db.session.get(Dataset, mine_id).owner_id == bob_id and db.session.get(User, alice_id) is None
    result = runner.invoke(args=["delete-user", "nobody", "--yes"])
    assert result.exit_code == 1 and "no account named" in result.output


def test_until_the_purge_a_deleted_account_names_no_run(app, client, make_user, caplog):
    alice, bob = make_user("alice"), make_user("bob")
    theirs = owned_dataset(alice, 2, name="Alice's")
    share(theirs, bob, "editor")
    run = make_run(theirs, bob, metrics=METRICS, finished_at=utcnow(), name="bob-model")
    run_id, bob_id = run.id, bob.id
    assert login(client, "bob").status_code == 302
    with caplog.at_level("INFO", logger="app.blueprints.auth.deletion"):
        assert client.post("/account/delete", data={"password": "correct horse"}).status_code == 302
    assert any("(bob) deleted by" in record.getMessage() for record in caplog.records)
    assert db.session.get(TrainingRun, run_id).created_by_id is None  # before the worker's maintenance
    assert login(client, "alice").status_code == 302
    page = client.get(f"/models/{run_id}").get_data(as_text=True)
    assert "a deleted user" in page and "started by bob" not in page
    for url in ("/models", f"/models/{run_id}/results"):
        assert "bob" not in client.get(url).get_data(as_text=True).replace("bob-model", ""), url
    from app.blueprints.predict.tokens import create_token

    headers = {"Authorization": f"Bearer {create_token(alice.id, 'script')[1]}"}
    response = app.test_client().get(f"/api/v1/runs/{run_id}", headers=headers)
    assert response.status_code == 200 and "bob" not in response.get_data(as_text=True).replace("bob-model", "")


def test_a_deleted_account_logs_in_like_an_unknown_one_and_its_name_is_free(app, admin, make_user):
    bob = make_user("bob")
    bob_id = bob.id
    assert _confirm(admin, bob).status_code == 302
    assert "The account bob and its datasets are deleted." in flashes(admin.get("/admin/users").data)
    deleted = db.session.get(User, bob_id)
    assert deleted.username != "bob" and len(deleted.username) <= 40
    assert not _register_form_accepts(app, deleted.username)
    unknown = login(app.test_client(), "nobody")
    response = login(app.test_client(), "bob")
    assert response.status_code == unknown.status_code == 401
    assert flashes(response.data) == flashes(unknown.data) and "disabled" not in response.get_data(as_text=True)
    assert login(app.test_client(), deleted.username).status_code == 401
    assert deleted.username not in admin.get("/admin/users").get_data(as_text=True)
    newcomer = app.test_client()
    response = newcomer.post("/register", data={"username": "bob", "password": "a new horse battery",
                                                "confirm": "a new horse battery"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert db.session.get(User, bob_id) is not None  # the old row waits for its purge
    result = app.test_cli_runner().invoke(args=["delete-user", deleted.username, "--yes"])
    assert result.exit_code == 1 and "no account named" in result.output


def _register_form_accepts(app, username: str) -> bool:
    from app.blueprints.auth.forms import RegisterForm

    with app.test_request_context(method="POST", data={"username": username, "password": "x", "confirm": "x"}):
        form = RegisterForm(meta={"csrf": False})
        form.validate()
        return not form.username.errors


def _others_model_on(owner, other):
    """`owner`'s dataset shared with `other`, who trained a model on it."""
    dataset = owned_dataset(owner, 1, name="Shared")
    share(dataset, other, "editor")
    return make_run(dataset, other, metrics=METRICS, finished_at=utcnow(), name="others-model")


def test_the_summary_says_other_peoples_models_go_too(app, admin, make_user):
    dave, alice = make_user("dave"), make_user("alice")
    others = _others_model_on(dave, alice)
    make_run(others.dataset, dave, metrics=METRICS, finished_at=utcnow(), name="daves-model")
    dave_browser = app.test_client()
    assert login(dave_browser, "dave").status_code == 302
    page = dave_browser.get("/account/delete").get_data(as_text=True)
    assert "1 dataset owned, with 1 image (" in page
    assert "It is deleted, with its images, classes and models." in page and "They are" not in page
    assert "1 model trained by this account on these datasets." in page
    assert "1 model another person trained on these datasets is deleted too." in page
    assert "1 person has access to these datasets through a share: that access ends." in page
    assert "ask an administrator to delete your account and give your datasets to someone instead" in page
    admin_page = admin.get(f"/admin/users/{dave.id}/delete").get_data(as_text=True)
    assert "1 model another person trained on these datasets is deleted too." in admin_page
    assert "unless you give it to another account below." in admin_page
    assert "Give the datasets to another account below to keep those models and that access." in admin_page
    result = app.test_cli_runner().invoke(args=["delete-user", "dave"], input="n\n")
    assert "1 dataset owned, with 1 image (" in result.output, result.output
    assert "1 model another person trained on these datasets is deleted too." in result.output
    result = app.test_cli_runner().invoke(args=["delete-user", "dave", "--transfer-to", "root"], input="n\n")
    assert "It goes to root, with its models and shares." in result.output, result.output
    assert "1 model another person trained on these datasets stays with them." in result.output


def test_the_summary_without_other_peoples_models_has_no_warning(app, logged_in, make_user):
    owned_dataset(logged_in.user, 2)
    owned_dataset(logged_in.user, 1, name="More")
    page = logged_in.get("/account/delete").get_data(as_text=True)
    assert "2 datasets owned, with 3 images (" in page and "They are deleted, with their images" in page
    assert "ask an administrator" not in page and "another person" not in page and "through a share" not in page


def test_an_account_deleted_before_its_rename_logs_in_like_an_unknown_one(app, client, make_user):
    bob = make_user("bob")
    bob.is_disabled, bob.deleted_at = True, utcnow()  # as deleted before names were freed at once
    db.session.commit()
    unknown = login(app.test_client(), "nobody")
    response = login(client, "bob")
    assert response.status_code == unknown.status_code == 401 and flashes(response.data) == flashes(unknown.data)


def test_run_logs_kept_after_a_deletion_name_a_deleted_user(app, admin, make_user):
    """The runs of a dataset handed over stay; their logs said who queued and cancelled them."""
    from tests.training.conftest import TINY

    alice, bob = make_user("alice"), make_user("bob")
    mine = owned_dataset(alice, 12)
    blue = Label(dataset_id=mine.id, name="blue", position=1)
    db.session.add(blue)
    db.session.flush()
    for image in db.session.scalars(select(Image).where(Image.dataset_id == mine.id).limit(6)):
        image.label_id = blue.id  # two classes to train on
    db.session.commit()
    share(mine, bob, "editor")
    bobs = make_run(mine, bob, status="running", name="bob-running")
    alices_client = app.test_client()
    assert login(alices_client, "alice").status_code == 302
    assert alices_client.post(f"/datasets/{mine.id}/train", data={**TINY, "name": "queued-model"}).status_code == 302
    queued = db.session.scalars(select(TrainingRun).where(TrainingRun.name == "queued-model")).one()
    queued_id, bobs_id = queued.id, bobs.id
    for run_id in (queued_id, bobs_id):
        assert alices_client.post(f"/models/{run_id}/cancel").status_code == 302
    assert "alice asked to cancel" in html.unescape(alices_client.get(f"/models/{bobs_id}/progress").get_data(as_text=True))
    assert _confirm(admin, alice, transfer_to=str(bob.id)).status_code == 302
    db.session.expire_all()
    for run_id in (queued_id, bobs_id):
        log = db.session.get(TrainingRun, run_id).log
        assert "alice" not in str(log) and "a deleted user" in str(log), log
    assert login(alices_client, "bob").status_code == 302
    queued_page = html.unescape(alices_client.get(f"/models/{queued_id}/progress").get_data(as_text=True))
    assert "Queued by a deleted user: 12 images" in queued_page and "Cancelled by a deleted user" in queued_page
    bobs_page = html.unescape(alices_client.get(f"/models/{bobs_id}/progress").get_data(as_text=True))
    assert "a deleted user asked to cancel" in bobs_page and "alice" not in bobs_page
