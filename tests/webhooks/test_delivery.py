"""Deliveries: signed, with the API's document of the object, retried, recorded, checked for access when
they run, refused for private addresses when those are not allowed, disabled after failing in a row."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from app.blueprints.webhooks import services
from app.blueprints.webhooks.models import Webhook, WebhookDelivery
from app.extensions import db
from app.models import utcnow
from tests.webhooks.conftest import run_webhook_jobs


def attempts(webhook_id: int) -> list[WebhookDelivery]:
    db.session.expire_all()
    return list(db.session.query(WebhookDelivery).filter_by(webhook_id=webhook_id).order_by(WebhookDelivery.id))


def test_a_ping_is_signed_with_the_secret_and_carries_its_headers(app, alice, receiver):
    webhook, secret = services.create_webhook(alice, receiver.url, ["run.finished"])
    delivery_id = services.send_ping(alice, webhook.id)
    run_webhook_jobs(app)
    [request] = receiver.requests
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Studio-Signature"] == expected
    assert request["headers"]["X-Studio-Event"] == "ping"
    assert request["headers"]["X-Studio-Delivery"] == delivery_id
    assert request["headers"]["Content-Type"] == "application/json"
    body = json.loads(request["body"])
    assert body["event"] == "ping" and body["delivery"] == delivery_id and body["timestamp"].endswith("Z")
    assert body["webhook"] == {"id": webhook.id, "url": receiver.url, "events": ["run.finished"], "dataset_id": None}
    [row] = attempts(webhook.id)
    assert row.ok and row.status_code == 200 and row.attempt == 1 and row.error is None and row.duration_ms >= 0


def test_a_finished_run_delivers_what_the_api_answers_for_it(app, alice, receiver, make_run):
    from app.blueprints.predict.tokens import create_token
    from app.blueprints.training import lifecycle

    webhook, secret = services.create_webhook(alice, receiver.url, ["run.finished", "import.finished"])
    run = make_run(alice)
    lifecycle.finish_failed(run, RuntimeError("boom"))  # the training job's own ending: only queues a job
    assert receiver.requests == []
    run_webhook_jobs(app)
    [request] = receiver.requests
    assert request["headers"]["X-Studio-Event"] == "run.finished"
    body = json.loads(request["body"])
    token = create_token(alice.id, "t")[1]
    answer = app.test_client().get(f"/api/v1/runs/{run.id}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert body["run"] == answer.json and body["run"]["status"] == "failed"
    assert body["event"] == "run.finished" and body["webhook_id"] == webhook.id


def test_a_webhook_hears_only_its_events_and_its_dataset(app, alice, receiver, make_run):
    from app.blueprints.training import lifecycle

    run = make_run(alice)
    other = make_run(alice)
    services.create_webhook(alice, receiver.url, ["import.finished"])  # another event
    services.create_webhook(alice, receiver.url, ["run.finished"], dataset_id=other.dataset_id)  # another dataset
    lifecycle.finish_failed(run, RuntimeError("boom"))
    run_webhook_jobs(app)
    assert receiver.requests == []
    lifecycle.finish_failed(other, RuntimeError("boom"))
    run_webhook_jobs(app)
    assert [json.loads(r["body"])["run"]["id"] for r in receiver.requests] == [other.id]


def test_access_is_checked_again_when_the_delivery_runs(app, alice, make_user, receiver, make_run):
    from app.blueprints.datasets.sharing import share_dataset
    from app.models import DatasetShare, TrainingRun

    bob = make_user("bob")
    run = make_run(alice, status="failed")
    share_dataset(run.dataset, "bob", "viewer")
    webhook, _ = services.create_webhook(bob, receiver.url, ["run.finished"])
    # the event was dispatched while bob could see the dataset; alice unshares it before the delivery runs
    services.queue_delivery(webhook, "run.finished", run.id, utcnow())
    db.session.query(DatasetShare).filter_by(user_id=bob.id).delete()
    db.session.commit()
    run_webhook_jobs(app)
    assert receiver.requests == [] and attempts(webhook.id) == []
    # and an event on a dataset bob cannot see never reaches his webhook
    services.notify("run.finished", run.id)
    run_webhook_jobs(app)
    assert receiver.requests == [] and attempts(webhook.id) == []
    # nor does a deleted run's
    share_dataset(run.dataset, "bob", "viewer")
    db.session.get(TrainingRun, run.id).deleting = True
    db.session.commit()
    services.notify("run.finished", run.id)
    run_webhook_jobs(app)
    assert receiver.requests == []


def test_failed_attempts_are_retried_then_the_success_is_recorded(app, alice, receiver, make_run):
    from app.blueprints.training import lifecycle

    receiver.answers = [500, 503, 200]
    webhook, _ = services.create_webhook(alice, receiver.url, ["run.finished"])
    lifecycle.finish_failed(make_run(alice), RuntimeError("boom"))
    run_webhook_jobs(app)
    rows = attempts(webhook.id)
    assert [(r.attempt, r.ok, r.status_code) for r in rows] == [(1, False, 500), (2, False, 503), (3, True, 200)]
    assert len({r.delivery_id for r in rows}) == 1
    assert len({r["headers"]["X-Studio-Delivery"] for r in receiver.requests}) == 1
    assert "HTTP 500" in rows[0].error["message"]
    assert db.session.get(Webhook, webhook.id).failures_in_row == 0


def test_five_attempts_at_most_then_disabled_after_twenty_failures_in_a_row(app, alice, receiver, make_run):
    receiver.answers = [500]
    webhook, _ = services.create_webhook(alice, receiver.url, ["run.finished"])
    run = make_run(alice, status="failed")
    for _ in range(4):
        services.queue_delivery(webhook, "run.finished", run.id, utcnow())
        run_webhook_jobs(app)
    rows = attempts(webhook.id)
    assert len(rows) == 20 and [r.attempt for r in rows[:5]] == [1, 2, 3, 4, 5] and not any(r.ok for r in rows)
    webhook = db.session.get(Webhook, webhook.id)
    assert not webhook.enabled and webhook.failures_in_row == 20
    assert "20 failed attempts" in webhook.disabled_reason["message"]
    services.queue_delivery(webhook, "run.finished", run.id, utcnow())  # disabled: nothing more is sent
    run_webhook_jobs(app)
    assert len(receiver.requests) == 20
    services.enable_webhook(alice, webhook.id)
    assert db.session.get(Webhook, webhook.id).enabled and db.session.get(Webhook, webhook.id).failures_in_row == 0


def test_redirects_are_not_followed(app, alice, receiver):
    def redirect(handler):
        handler.send_response(302)
        handler.send_header("Location", "/elsewhere")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    receiver.handler = redirect
    webhook, _ = services.create_webhook(alice, receiver.url, ["run.finished"])
    services.send_ping(alice, webhook.id)
    run_webhook_jobs(app)
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    [row] = attempts(webhook.id)
    assert not row.ok and row.status_code == 302 and "redirect" in row.error["message"]


def test_a_huge_or_slow_answer_is_cut_short(app, alice, receiver):
    def huge(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(100 * 2**20))
        handler.end_headers()
        handler.wfile.write(b"x" * (256 * 1024))  # more than is read, then nothing for long
        time.sleep(5)

    receiver.handler = huge
    webhook, _ = services.create_webhook(alice, receiver.url, ["run.finished"])
    services.send_ping(alice, webhook.id)
    started = time.monotonic()
    run_webhook_jobs(app)
    assert time.monotonic() - started < 2
    [row] = attempts(webhook.id)
    assert row.ok and row.status_code == 200

    def silent(handler):
        time.sleep(4)

    receiver.handler = silent
    services.send_ping(alice, webhook.id)
    run_webhook_jobs(app)
    row = attempts(webhook.id)[-1]
    assert not row.ok and row.status_code is None and "No answer within 2 seconds" in row.error["message"]
    assert 1500 <= row.duration_ms < 3500


def test_a_refused_connection_is_recorded(app, alice):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    webhook, _ = services.create_webhook(alice, f"http://127.0.0.1:{port}/", ["run.finished"])
    services.send_ping(alice, webhook.id)
    run_webhook_jobs(app)
    [row] = attempts(webhook.id)
    assert not row.ok and "connection failed" in row.error["message"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/h", "http://localhost/h", "http://10.1.2.3/h",
                                 "https://192.168.0.10/", "http://169.254.169.254/latest/meta-data",
                                 "http://[::1]:8080/", "http://0.0.0.0/", "http://100.64.0.1/",
                                 "http://[::ffff:127.0.0.1]/"])
def test_private_addresses_are_refused_at_creation_when_not_allowed(app, alice, url):
    from app.errors import ValidationError

    app.config["WEBHOOKS_ALLOW_PRIVATE"] = False
    with pytest.raises(ValidationError) as refused:
        services.create_webhook(alice, url, ["run.finished"])
    assert "WEBHOOKS_ALLOW_PRIVATE" in refused.value.message
    assert db.session.query(Webhook).count() == 0


def test_private_addresses_are_refused_at_delivery_when_not_allowed(app, alice, receiver):
    webhook, _ = services.create_webhook(alice, receiver.url, ["run.finished"])  # allowed then
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = False
    services.send_ping(alice, webhook.id)
    run_webhook_jobs(app)
    assert receiver.requests == []
    [row] = attempts(webhook.id)
    assert not row.ok and "private, loopback or link-local" in row.error["message"]


def test_private_addresses_are_refused_by_default_in_production(monkeypatch, tmp_path):
    from app.config import build_config

    for name, value in {"APP_ENV": "production", "SECRET_KEY": "s", "DATABASE_URL": "sqlite://",
                        "REDIS_URL": "redis://x"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WEBHOOKS_ALLOW_PRIVATE", raising=False)
    assert build_config(str(tmp_path))["WEBHOOKS_ALLOW_PRIVATE"] is False
    monkeypatch.setenv("WEBHOOKS_ALLOW_PRIVATE", "1")
    assert build_config(str(tmp_path))["WEBHOOKS_ALLOW_PRIVATE"] is True
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.delenv("WEBHOOKS_ALLOW_PRIVATE")
    assert build_config(str(tmp_path))["WEBHOOKS_ALLOW_PRIVATE"] is True


def test_a_finished_import_and_evaluation_are_delivered(app, alice, receiver, make_run):
    from app.blueprints.datasets.images.importer import finish
    from app.models import Evaluation, Import

    webhook, _ = services.create_webhook(alice, receiver.url, ["import.finished", "evaluation.finished"])
    run = make_run(alice, status="succeeded")
    imp = Import(dataset_id=run.dataset_id, user_id=alice.id, kind="files", status="running", total=3, errors=[])
    evaluation = Evaluation(run_id=run.id, dataset_id=run.dataset_id, created_by_id=alice.id, status="failed",
                            error={"message": "x"}, finished_at=utcnow())
    db.session.add_all([imp, evaluation])
    db.session.commit()
    finish(imp.id, "cancelled", None)  # the import job's own ending
    services.notify("evaluation.finished", evaluation.id)  # what the evaluation job does when it ends
    run_webhook_jobs(app)
    bodies = {json.loads(r["body"])["event"]: json.loads(r["body"]) for r in receiver.requests}
    assert bodies["import.finished"]["import"]["id"] == imp.id
    assert bodies["import.finished"]["import"]["status"] == "cancelled"
    assert bodies["import.finished"]["import"]["status_url"] == f"/api/v1/datasets/{run.dataset_id}/imports/{imp.id}"
    assert bodies["evaluation.finished"]["evaluation"]["id"] == evaluation.id
    assert bodies["evaluation.finished"]["evaluation"]["status"] == "failed"
    assert len(attempts(webhook.id)) == 2


def test_no_webhooks_no_job(app, alice, make_run):
    from app.extensions import get_queue
    from app.jobs import WEBHOOK_QUEUE

    services.notify("run.finished", make_run(alice, status="failed").id)
    assert get_queue(WEBHOOK_QUEUE).count == 0
