"""The owner hands a dataset over on its sharing page: the new owner's quotas must take it, the giver keeps
editing it, and nothing changes when it is refused."""
from __future__ import annotations

import html

from sqlalchemy import select

from app.extensions import db
from app.models import Dataset, DatasetShare, User
from tests.conftest import login
from tests.datasets.conftest import png, upload


def _owned_by_alice(client, make_user, images: int = 2) -> int:
    from app.blueprints.datasets.services import create_dataset
    from app.blueprints.datasets.sharing import share_dataset

    alice, _eve, _vic = make_user("alice"), make_user("eve"), make_user("vic")
    dataset = create_dataset(alice.id, "Birds")
    share_dataset(dataset, "eve", "viewer")
    share_dataset(dataset, "vic", "viewer")
    login(client, "alice")
    upload(client, dataset.id, [(f"{i}.png", png(i)) for i in range(images)])
    return dataset.id


def _counts(name: str) -> int:
    return db.session.scalar(select(User.image_count).where(User.username == name))


def _page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_the_owner_hands_the_dataset_over_and_keeps_editing(client, make_user):
    dataset_id = _owned_by_alice(client, make_user)
    assert "Make them the owner" in client.get(f"/datasets/{dataset_id}/sharing").get_data(as_text=True)
    response = client.post(f"/datasets/{dataset_id}/owner", data={"username": "Eve"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/datasets/{dataset_id}")
    assert "eve now owns “Birds”. You can still upload and label as an editor." in _page(client.get(f"/datasets/{dataset_id}"))
    db.session.expire_all()
    eve, alice = (db.session.scalar(select(User).where(User.username == n)) for n in ("eve", "alice"))
    assert db.session.get(Dataset, dataset_id).owner_id == eve.id
    roles = dict(db.session.execute(select(DatasetShare.user_id, DatasetShare.role)
                                    .where(DatasetShare.dataset_id == dataset_id)).all())
    assert roles == {alice.id: "editor", db.session.scalar(select(User.id).where(User.username == "vic")): "viewer"}
    assert (_counts("alice"), _counts("eve")) == (0, 2)  # the images' room moved with them
    assert client.get(f"/datasets/{dataset_id}/sharing").status_code == 403  # alice is an editor now
    assert upload(client, dataset_id, [("more.png", png(9))]).status_code == 200
    client.post("/logout")
    login(client, "eve")
    assert client.get(f"/datasets/{dataset_id}/sharing").status_code == 200


def test_a_receiver_that_cannot_take_it_is_refused_with_nothing_changed(client, make_user):
    dataset_id = _owned_by_alice(client, make_user, images=3)
    eve = db.session.scalar(select(User).where(User.username == "eve"))
    eve.quota_images = 2
    db.session.commit()
    refused = client.post(f"/datasets/{dataset_id}/owner", data={"username": "eve"})
    assert refused.status_code == 403
    assert "eve cannot take this dataset: it holds 3 images" in _page(refused) and "room left for 2 images" in _page(refused)
    from app.blueprints.datasets.services import create_dataset

    eve.quota_images, eve.quota_datasets = None, 1
    create_dataset(eve.id, "Eve's own")  # her one dataset: no room for a second
    refused = client.post(f"/datasets/{dataset_id}/owner", data={"username": "eve"})
    assert refused.status_code == 403 and "eve has no room for another dataset" in _page(refused)
    db.session.get(User, db.session.scalar(select(User.id).where(User.username == "vic"))).is_disabled = True
    db.session.commit()
    for name, words in (("nobody", "There is no user called “nobody”"), ("alice", "You own this dataset already"),
                        ("vic", "The account vic is disabled: it cannot own datasets")):
        answer = client.post(f"/datasets/{dataset_id}/owner", data={"username": name})
        assert answer.status_code == 422 and words in _page(answer)
        assert f'id="owner-username" type="text" name="username" value="{name}"' in _page(answer)  # kept
    db.session.expire_all()
    assert db.session.get(Dataset, dataset_id).owner.username == "alice" and (_counts("alice"), _counts("eve")) == (3, 0)


def test_only_the_owner_hands_it_over(client, make_user):
    dataset_id = _owned_by_alice(client, make_user)
    client.post("/logout")
    login(client, "vic")
    assert client.post(f"/datasets/{dataset_id}/owner", data={"username": "vic"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(Dataset, dataset_id).owner.username == "alice"


def test_the_api_hands_it_over_too(app, client, make_user):
    from app.blueprints.predict.tokens import create_token

    dataset_id = _owned_by_alice(client, make_user)
    alice = db.session.scalar(select(User).where(User.username == "alice"))
    auth = {"Authorization": f"Bearer {create_token(alice.id, 'script')[1]}"}
    api = app.test_client()
    answer = api.post(f"/api/v1/datasets/{dataset_id}/owner", json={"username": "vic"}, headers=auth, csrf=False)
    assert answer.status_code == 200 and (answer.json["owner"], answer.json["role"]) == ("vic", "editor")
    again = api.post(f"/api/v1/datasets/{dataset_id}/owner", json={"username": "eve"}, headers=auth, csrf=False)
    assert again.status_code == 403  # an editor now: only vic can hand it on
