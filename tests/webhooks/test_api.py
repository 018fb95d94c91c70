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


def test_one_webhook_never_its_secret_and_another_users_is_a_404(app, alice, make_user):
    api = api_for(app, alice)
    created = api.post("/api/v1/webhooks", json={"url": "https://example.com/a", "events": ["run.finished"]}).json
    one = api.get(f"/api/v1/webhooks/{created['id']}")
    assert one.status_code == 200
    assert one.json == {k: v for k, v in created.items() if k != "secret"}
    bob = api_for(app, make_user("bob"))
    for url in (f"/api/v1/webhooks/{created['id']}", f"/api/v1/webhooks/{created['id']}/deliveries",
                "/api/v1/webhooks/999999"):
        answer = bob.get(url)
        assert (answer.status_code, answer.json["code"]) == (404, "not_found"), url


def add_attempts(webhook_id: int, count: int) -> list[int]:
    from app.models import utcnow

    rows = [WebhookDelivery(webhook_id=webhook_id, delivery_id=f"d{n}", event="run.finished", object_id=n,
                            occurred_at=utcnow(), attempt=1, ok=n % 2 == 0, status_code=200 if n % 2 == 0 else 500,
                            error=None if n % 2 == 0 else {"message": "HTTP 500 from the receiver."},
                            duration_ms=n) for n in range(count)]
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]


def test_deliveries_newest_first_a_page_at_a_time_by_key(app, alice):
    from app.blueprints.webhooks import services

    api = api_for(app, alice)
    mine, _ = services.create_webhook(alice, "https://example.com/mine", ["run.finished"])
    other, _ = services.create_webhook(alice, "https://example.com/other", ["run.finished"])
    ids = add_attempts(mine.id, 5)
    add_attempts(other.id, 3)  # another webhook's: never listed here
    url = f"/api/v1/webhooks/{mine.id}/deliveries"
    first = api.get(url + "?limit=2").json
    assert [d["id"] for d in first["deliveries"]] == ids[:-3:-1] and first["total"] == 5
    assert first["newer"] is None and first["older"] == ids[3]
    latest = first["deliveries"][0]
    assert latest == {"id": ids[4], "delivery_id": "d4", "event": "run.finished", "object_id": 4,
                      "occurred_at": latest["occurred_at"], "attempt": 1, "ok": True, "status_code": 200,
                      "error": None, "duration_ms": 4, "created_at": latest["created_at"]}
    assert first["deliveries"][1]["error"] == "HTTP 500 from the receiver." and not first["deliveries"][1]["ok"]
    second = api.get(url + f"?limit=2&before={first['older']}").json
    assert [d["id"] for d in second["deliveries"]] == [ids[2], ids[1]]
    assert (second["newer"], second["older"]) == (ids[2], ids[1])
    last = api.get(url + f"?limit=2&before={second['older']}").json
    assert [d["id"] for d in last["deliveries"]] == [ids[0]] and last["older"] is None
    back = api.get(url + f"?limit=2&after={last['newer']}").json
    assert [d["id"] for d in back["deliveries"]] == [ids[2], ids[1]]
    assert api.get(url).json["deliveries"][0]["id"] == ids[4]  # 20 by default: all five
    assert len(api.get(url).json["deliveries"]) == 5
    for bad in ("limit=0", "limit=201", "before=-1", "after=x"):
        answer = api.get(f"{url}?{bad}")
        assert (answer.status_code, answer.json["code"]) == (400, "validation_error"), bad


def test_a_new_secret_signs_every_delivery_from_then_on(app, alice, make_user, receiver, make_run):
    import hashlib
    import hmac

    from app.blueprints.webhooks import services
    from app.models import utcnow

    api = api_for(app, alice)
    created = api.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["run.finished"]}).json
    queued = services.queue_delivery(db.session.get(Webhook, created["id"]), "run.finished",
                                     make_run(alice, status="failed").id, utcnow())  # waits in the queue
    bob = api_for(app, make_user("bob"))
    assert bob.post(f"/api/v1/webhooks/{created['id']}/secret").status_code == 404
    assert db.session.get(Webhook, created["id"]).secret == created["secret"]
    rotated = api.post(f"/api/v1/webhooks/{created['id']}/secret")
    assert rotated.status_code == 200
    new = rotated.json["secret"]
    assert new.startswith("whsec_") and new != created["secret"] and rotated.json["id"] == created["id"]
    assert new not in api.get(f"/api/v1/webhooks/{created['id']}").get_data(as_text=True)
    api.post(f"/api/v1/webhooks/{created['id']}/test")
    run_webhook_jobs(app)
    assert {r["headers"]["X-Studio-Delivery"] for r in receiver.requests} >= {queued}
    for request in receiver.requests:  # the one queued before the rotation too
        def signed(secret: str) -> str:
            return "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Studio-Signature"] == signed(new) != signed(created["secret"])
    assert len(receiver.requests) == 2
