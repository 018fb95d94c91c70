"""Uploads are rate limited per account."""
from __future__ import annotations

import time

import pytest

from tests.conftest import login
from tests.datasets.conftest import png, upload


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": True, "RATELIMIT_UPLOAD": "2 per 2 seconds"}


def test_upload_limit_trips_per_account_and_recovers(app, logged_in, dataset, make_user):
    assert upload(logged_in, dataset.id, [("a.png", png(1))]).status_code == 200
    assert upload(logged_in, dataset.id, [("b.png", png(2))]).status_code == 200
    refused = upload(logged_in, dataset.id, [("c.png", png(3))])
    assert refused.status_code == 429 and refused.json["code"] == "rate_limited"

    # another account (same IP) is not held up by alice's uploads
    from app.blueprints.datasets.services import create_dataset

    make_user("bob")
    other = app.test_client()
    login(other, "bob")
    theirs = create_dataset(2, "Bob's")
    assert upload(other, theirs.id, [("c.png", png(3))]).status_code == 200

    time.sleep(int(refused.headers["Retry-After"]))
    assert upload(logged_in, dataset.id, [("c.png", png(3))]).status_code == 200


def test_the_page_form_gets_a_friendly_page(logged_in, dataset):
    for n in range(2):
        upload(logged_in, dataset.id, [(f"{n}.png", png(n))], json=False)
    refused = upload(logged_in, dataset.id, [("x.png", png(9))], json=False)
    assert refused.status_code == 429
    assert b"Slow down" in refused.data and "Retry-After" in refused.headers


def test_api_uploads_share_the_account_budget_with_the_pages(app, logged_in, dataset):
    """The JSON API's upload spends the same per-account budget as the page's (one limit per person)."""
    import io

    from app.blueprints.predict.tokens import create_token

    token = create_token(logged_in.user.id, "script")[1]
    script = app.test_client()

    def api_upload(name: str, data: bytes):
        return script.post(f"/api/v1/datasets/{dataset.id}/images", data={"files": [(io.BytesIO(data), name)]},
                           headers={"Authorization": f"Bearer {token}"}, content_type="multipart/form-data",
                           csrf=False)

    assert upload(logged_in, dataset.id, [("a.png", png(1))]).status_code == 200
    assert api_upload("b.png", png(2)).status_code == 200
    refused = api_upload("c.png", png(3))
    assert refused.status_code == 429 and refused.json["code"] == "rate_limited"
    assert upload(logged_in, dataset.id, [("d.png", png(4))]).status_code == 429
