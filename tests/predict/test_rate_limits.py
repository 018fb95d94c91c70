"""POST /predict is limited in images, not requests: per account (token or session) and per IP for
anonymous calls; the two prediction URLs share one budget."""
from __future__ import annotations

import time

import pytest

from tests.predict.test_api import files


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": True, "RATELIMIT_PREDICT": "5 per 2 seconds",
            "RATELIMIT_PREDICT_ANONYMOUS": "3 per 2 seconds"}


def test_images_are_counted_and_the_limit_recovers(app, make_user, make_model):
    from app.blueprints.predict.tokens import create_token

    owner = make_user("owner")
    run = make_model(owner)
    _, token = create_token(owner.id, "script")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    first = client.post(f"/models/{run.id}/predict", data={"file": files("red", "blue", "green")},
                        headers=headers, csrf=False)
    assert first.status_code == 200 and len(first.json["predictions"]) == 3
    # 3 + 3 images > 5: refused as a whole, although it is only the second request
    refused = client.post("/predict", data={"file": files("red", "blue", "green"), "model": str(run.id)},
                          headers=headers, csrf=False)
    assert refused.status_code == 429
    assert refused.json["code"] == "rate_limited" and refused.json["status"] == 429
    assert "5 per 2 second" in refused.json["error"]
    time.sleep(int(refused.headers["Retry-After"]))
    again = client.post("/predict", data={"files": files("red", "blue"), "model": str(run.id)},
                        headers=headers, csrf=False)
    assert again.status_code == 200 and len(again.json["predictions"]) == 2


def test_anonymous_callers_have_a_smaller_budget_per_ip(app, make_user, make_model):
    owner = make_user("owner")
    run = make_model(owner, public=True)
    anonymous = app.test_client()
    url = f"/models/{run.id}/predict"
    assert anonymous.post(url, data={"file": files("red", "blue")}, csrf=False).status_code == 200
    assert anonymous.post(url, data={"file": files("red", "blue")}, csrf=False).status_code == 429
    # a made-up token is no way around it: unknown tokens count against the IP as well
    bogus = anonymous.post(url, data={"file": files("red")}, headers={"Authorization": "Bearer ics_nope"},
                           csrf=False)
    assert bogus.status_code == 429


def test_each_account_has_its_own_budget(app, make_user, make_model):
    from app.blueprints.predict.tokens import create_token

    alice, bob = make_user("alice"), make_user("bob")
    run = make_model(alice, public=True)
    client = app.test_client()
    alice_token, bob_token = create_token(alice.id, "a")[1], create_token(bob.id, "b")[1]
    url = f"/models/{run.id}/predict"
    for token, expected in ((alice_token, 200), (alice_token, 429), (bob_token, 200)):
        response = client.post(url, data={"file": files("red", "green", "blue")}, csrf=False,
                               headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == expected


def test_predicted_images_are_counted_for_the_admin_overview(app, make_user, make_model):
    from app.activity import top_predictors

    owner = make_user("owner")
    run = make_model(owner, public=True)
    app.test_client().post(f"/models/{run.id}/predict", data={"file": files("red", "blue")}, csrf=False)
    client = app.test_client()
    from tests.conftest import login

    login(client, "owner")
    client.post(f"/models/{run.id}/predict", data={"file": files("green")})
    assert sorted(top_predictors()) == [("ip:127.0.0.1", 2), (f"user:{owner.id}", 1)]


def test_explain_shares_the_prediction_budget_at_ten_images_a_call(app, make_user, make_model):
    """POST /models/<id>/explain spends EXPLAIN_COST (10) images of the same budget as the prediction URLs:
    it runs ~50 forward passes for its one upload."""
    from app.blueprints.predict.views import EXPLAIN_COST

    assert EXPLAIN_COST == 10
    app.config["RATELIMIT_PREDICT_ANONYMOUS"] = "12 per 2 seconds"  # read per request
    owner = make_user("owner")
    run = make_model(owner, public=True)
    anonymous = app.test_client()
    assert anonymous.post(f"/models/{run.id}/predict", data={"file": files("red", "blue")}, csrf=False).status_code == 200
    one = {"file": files("green")[0]}
    assert anonymous.post(f"/models/{run.id}/explain", data=one, csrf=False).status_code == 200  # 2 + 10 = 12
    refused = anonymous.post(f"/models/{run.id}/predict", data={"file": files("red")[0]}, csrf=False)
    assert refused.status_code == 429 and refused.json["code"] == "rate_limited"
