"""Fixtures for the API tests: users with API tokens, a small dataset world, bearer-token calls."""
from __future__ import annotations

import hashlib
import io

import pytest

from tests.conftest import image_bytes

ROLES = ("owner", "editor", "viewer", "stranger", "anonymous")
USERNAMES = {"owner": "alice", "editor": "ed", "viewer": "vic", "stranger": "eve"}


def png(n: int, color=(200, 40, 40), size=(32, 32)) -> bytes:
    return image_bytes(color=color, size=size, noise=n + 1)


def files(*items: tuple[str, bytes]) -> list:
    """Multipart file parts for the Flask test client (requests' files=[...])."""
    return [(io.BytesIO(content), name) for name, content in items]


class Api:
    """Calls the API as one user, with a bearer token and no CSRF token, as a script would."""

    def __init__(self, client, token: str | None):
        self.client, self.token = client, token

    def call(self, method: str, url: str, **kwargs):
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = self.client.open(url, method=method, headers=headers, csrf=False, **kwargs)
        response.get_data()  # read a streamed file before its handle is closed
        response.close()
        return response

    def get(self, url, **kw):
        return self.call("GET", url, **kw)

    def post(self, url, **kw):
        return self.call("POST", url, **kw)

    def patch(self, url, **kw):
        return self.call("PATCH", url, **kw)

    def put(self, url, **kw):
        return self.call("PUT", url, **kw)

    def delete(self, url, **kw):
        return self.call("DELETE", url, **kw)


@pytest.fixture
def users(app, make_user):
    """alice (owner of what `world` makes), ed, vic, eve: {role: (User, token)}; anonymous: (None, None)."""
    from app.blueprints.predict.tokens import create_token

    found = {}
    for role, name in USERNAMES.items():
        user = make_user(name)
        found[role] = (user, create_token(user.id, "tests")[1])
    found["anonymous"] = (None, None)
    return found


@pytest.fixture
def api_as(app, users):
    """api_as('viewer') -> an Api calling as that role's user (a fresh client each time)."""
    return lambda role: Api(app.test_client(), users[role][1])


@pytest.fixture
def world(app, users):
    """world(queued=True) -> ids of a fresh dataset of alice's, shared with ed (editor) and vic (viewer):
    2 classes with 4 images each, a finished import, a succeeded run with (stand-in) files and an evaluation,
    a failed run with its frozen samples, a webhook of alice's about it, and a queued run when asked."""
    from app.blueprints.datasets.sharing import share_dataset
    from app.blueprints.webhooks.services import create_webhook
    from app.extensions import db
    from app.ml.artifacts import CARD, DOWNLOADS
    from app.models import Dataset, Evaluation, Image, Import, Label, RunSample, TrainingRun
    from app.filestore import image_key, run_key, run_prefix, thumb_key
    from app.storage import get_storage

    owner = users["owner"][0]
    storage = get_storage()

    def make(queued: bool = False) -> dict:
        dataset = Dataset(owner_id=owner.id, name="Colours", description="")
        db.session.add(dataset)
        db.session.flush()
        labels = [Label(dataset_id=dataset.id, name=n, position=i + 1) for i, n in enumerate(("red", "blue"))]
        db.session.add_all(labels)
        db.session.flush()
        images = []
        for k, label in enumerate(labels):
            for i in range(4):
                data = png(100 * dataset.id + 10 * k + i, color=((200, 40, 40), (40, 40, 200))[k])
                sha = hashlib.sha256(data).hexdigest()
                storage.write(image_key(sha), data)
                storage.write(thumb_key(sha), data)
                images.append(Image(dataset_id=dataset.id, sha256=sha, label_id=label.id, filename=f"{k}-{i}.png",
                                    width=32, height=32, size_bytes=len(data), format="PNG", label_source="user"))
        db.session.add_all(images)
        imp = Import(dataset_id=dataset.id, user_id=owner.id, kind="zip", source_name="a.zip", status="finished",
                     total=1, errors=[])
        runs = {}
        for key, status in (("r", "succeeded"), ("f", "failed")) + ((("q", "queued"),) if queued else ()):
            runs[key] = TrainingRun(dataset_id=dataset.id, created_by_id=owner.id, name=key, architecture="small_cnn",
                                    mode="scratch", options={"image_size": 32}, status=status,
                                    classes=["red", "blue"], snapshot={"total": 1}, metrics={"accuracy": 0.5})
        db.session.add_all([imp, *runs.values()])
        db.session.flush()
        for filename, _, _ in DOWNLOADS.values():
            storage.write(run_key(runs["r"].id, filename), b"{}")
        runs["r"].artifact_dir = storage.ref(run_prefix(runs["r"].id))
        assert storage.exists(run_key(runs["r"].id, CARD))
        db.session.add(RunSample(run_id=runs["f"].id, position=0, image_id=images[0].id, class_index=0,
                                 sha256=images[0].sha256, part="train"))
        evaluation = Evaluation(run_id=runs["r"].id, dataset_id=dataset.id, created_by_id=owner.id,
                                status="succeeded", counts={"evaluated": 8}, metrics={"accuracy": 1.0})
        db.session.add(evaluation)
        db.session.commit()
        share = share_dataset(dataset, "ed", "editor")
        share_dataset(dataset, "vic", "viewer")
        webhook, _ = create_webhook(owner, "https://example.com/hook", ["run.finished"], dataset.id)
        return {"d": dataset.id, "l": labels[0].id, "l2": labels[1].id, "i": images[0].id, "i2": images[1].id,
                "s": share.id, "m": imp.id, "e": evaluation.id, "w": webhook.id,
                **{k: run.id for k, run in runs.items()}}

    return make
