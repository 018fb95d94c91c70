"""The webhooks API: create (the secret in that answer only), list, delete, test; its refusals."""
from __future__ import annotations

import json

from app.blueprints.webhooks.models import Webhook, WebhookDelivery
from app.extensions import db
from tests.api.conftest import Api
from tests.webhooks.conftest import run_webhook_jobs


def api_for(app, user) -> Api:
    from app.blueprints.predict.tokens import create_token

    return Api(app.test_client(), create_token(user.id, "t")[1])


def test_create_list_test_and_delete(app, alice, receiver):
    api = api_for(app, alice)
    created = api.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["run.finished", "import.finished"]})
    assert created.status_code == 201, created.json
    doc = created.json
    assert doc["secret"].startswith("whsec_") and doc["enabled"] is True and doc["dataset_id"] is None
    assert doc["events"] == ["run.finished", "import.finished"] and doc["created_at"].endswith("Z")
    listed = api.get("/api/v1/webhooks").json["webhooks"]
    assert [w["id"] for w in listed] == [doc["id"]] and "secret" not in listed[0]
    tested = api.post(f"/api/v1/webhooks/{doc['id']}/test")
    assert tested.status_code == 202
    run_webhook_jobs(app)
    [request] = receiver.requests
    assert json.loads(request["body"])["delivery"] == tested.json["delivery_id"]
    assert api.delete(f"/api/v1/webhooks/{doc['id']}").status_code == 204
    assert api.get("/api/v1/webhooks").json["webhooks"] == []
    assert db.session.query(WebhookDelivery).count() == 0


def test_refusals(app, alice, make_user):
    api = api_for(app, alice)
    answers = {
        "ftp": api.post("/api/v1/webhooks", json={"url": "ftp://example.com/", "events": ["run.finished"]}),
        "event": api.post("/api/v1/webhooks", json={"url": "https://example.com/", "events": ["run.started"]}),
        "none": api.post("/api/v1/webhooks", json={"url": "https://example.com/", "events": []}),
        "long": api.post("/api/v1/webhooks", json={"url": "https://e.com/" + "a" * 2000, "events": ["run.finished"]}),
        "extra": api.post("/api/v1/webhooks", json={"url": "https://e.com/", "events": ["run.finished"], "x": 1}),
        "dataset": api.post("/api/v1/webhooks", json={"url": "https://e.com/", "events": ["run.finished"],
                                                      "dataset_id": 999}),
    }
    assert {k: (a.status_code, a.json["code"]) for k, a in answers.items()} == {
        "ftp": (422, "validation_error"), "event": (400, "validation_error"), "none": (400, "validation_error"),
        "long": (400, "validation_error"), "extra": (400, "validation_error"), "dataset": (404, "not_found")}
    assert "http:// or https://" in answers["ftp"].json["error"]
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = False
    private = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:8080/", "events": ["run.finished"]})
    assert private.status_code == 422 and "WEBHOOKS_ALLOW_PRIVATE" in private.json["error"]
    app.config.update(WEBHOOKS_ALLOW_PRIVATE=True, WEBHOOKS_PER_USER=1)  # no DNS lookups below
    assert api.post("/api/v1/webhooks", json={"url": "https://e.com/", "events": ["run.finished"]}).status_code == 201
    over = api.post("/api/v1/webhooks", json={"url": "https://e.com/2", "events": ["run.finished"]})
    assert over.status_code == 422 and "the most an account may have" in over.json["error"]
    assert db.session.query(Webhook).count() == 1
    bob = api_for(app, make_user("bob"))
    webhook_id = db.session.query(Webhook).one().id
    assert bob.delete(f"/api/v1/webhooks/{webhook_id}").status_code == 404
    assert bob.post(f"/api/v1/webhooks/{webhook_id}/test").status_code == 404
    assert Api(app.test_client(), None).get("/api/v1/webhooks").status_code == 401
