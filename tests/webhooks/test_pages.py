"""The Webhooks pages of the account: adding one (its secret shown once), bad input refused whole, another
user's webhook a 404, the latest deliveries with Send again, a disabled webhook says why and can be enabled."""
from __future__ import annotations

import json

import pytest

from app.blueprints.webhooks import services
from app.blueprints.webhooks.models import Webhook, WebhookDelivery
from app.extensions import db
from app.models import utcnow
from tests.conftest import flashes, login
from tests.webhooks.conftest import run_webhook_jobs


def test_the_account_page_links_to_the_webhooks(logged_in):
    page = logged_in.get("/account").get_data(as_text=True)
    assert 'href="/account/webhooks"' in page


def test_adding_a_webhook_shows_its_secret_once(app, logged_in, receiver):
    answer = logged_in.post("/account/webhooks", data={"url": receiver.url, "events": ["run.finished",
                                                                                       "import.finished"]})
    assert answer.status_code == 201
    webhook = db.session.query(Webhook).one()
    assert webhook.secret.startswith("whsec_") and webhook.secret in answer.get_data(as_text=True)
    assert webhook.events == ["run.finished", "import.finished"] and webhook.dataset_id is None
    for url in ("/account/webhooks", f"/account/webhooks/{webhook.id}"):
        page = logged_in.get(url)
        assert page.status_code == 200 and webhook.secret not in page.get_data(as_text=True)
        assert receiver.url in page.get_data(as_text=True)


@pytest.mark.parametrize("form, words", [
    ({"url": "ftp://example.com/x", "events": ["run.finished"]}, "http:// or https://"),
    ({"url": "", "events": ["run.finished"]}, "Enter the address"),
    ({"url": "https://example.com/" + "a" * 2000, "events": ["run.finished"]}, "at most 2000"),
    ({"url": "https://user:pw@example.com/", "events": ["run.finished"]}, "user name and password"),
    ({"url": "https://exa mple.com/", "events": ["run.finished"]}, "spaces"),
    ({"url": "https:///path", "events": ["run.finished"]}, "no host"),
    ({"url": "https://example.com/", "events": []}, "at least one event"),
    ({"url": "https://example.com/", "events": ["run.started"]}, "at least one event"),
    ({"url": "https://example.com/", "events": ["run.finished"], "dataset_id": "abc"}, "dataset"),
    ({"url": "https://example.com/", "events": ["run.finished"], "dataset_id": "9" * 20}, "dataset"),  # was a 500
])
def test_bad_input_is_refused_with_a_message_and_nothing_written(logged_in, form, words):
    answer = logged_in.post("/account/webhooks", data=form)
    assert answer.status_code == 422
    assert any(words in message for message in flashes(answer.data)), flashes(answer.data)
    assert db.session.query(Webhook).count() == 0


def test_a_dataset_one_cannot_see_is_a_404_and_a_form_needs_its_csrf_token(logged_in, make_user, make_run):
    other = make_run(make_user("bob"))
    answer = logged_in.post("/account/webhooks", data={"url": "https://example.com/", "events": ["run.finished"],
                                                      "dataset_id": str(other.dataset_id)})
    assert answer.status_code == 404
    answer = logged_in.post("/account/webhooks", data={"url": "https://example.com/", "events": ["run.finished"]},
                            csrf=False)
    assert answer.status_code == 400
    assert db.session.query(Webhook).count() == 0


def test_another_users_webhook_is_a_404_everywhere(app, client, logged_in, make_user):
    bob = make_user("bob")
    webhook, bob_secret = services.create_webhook(bob, "https://example.com/bob", ["run.finished"])
    row = WebhookDelivery(webhook_id=webhook.id, delivery_id="d", event="ping", occurred_at=utcnow(), ok=True)
    db.session.add(row)
    db.session.commit()
    base = f"/account/webhooks/{webhook.id}"
    assert logged_in.get(base).status_code == 404
    for action in ("/delete", "/enable", "/ping", "/secret", f"/deliveries/{row.id}/resend"):
        assert logged_in.post(base + action).status_code == 404, action
    db.session.expire_all()
    assert db.session.get(Webhook, webhook.id).secret == bob_secret
    assert "example.com/bob" not in logged_in.get("/account/webhooks").get_data(as_text=True)
    logged_in.post("/logout")
    assert client.get(base).status_code == 302  # to the login page


def test_latest_deliveries_send_again_disable_and_enable(app, logged_in, receiver, make_run):
    user = logged_in.user
    receiver.answers = [500]
    webhook, _ = services.create_webhook(user, receiver.url, ["run.finished"])
    run = make_run(user, status="failed")
    for _ in range(4):
        services.queue_delivery(webhook, "run.finished", run.id, utcnow())
        run_webhook_jobs(app)
    page = logged_in.get(f"/account/webhooks/{webhook.id}").get_data(as_text=True)
    assert "This webhook is disabled" in page and "20 failed attempts in a row" in page
    assert page.count("Send again") == 20 and "HTTP 500" in page and "Enable it again" in page
    assert logged_in.post(f"/account/webhooks/{webhook.id}/enable").status_code == 302
    receiver.answers = [200]
    latest = db.session.query(WebhookDelivery).order_by(WebhookDelivery.id.desc()).first()
    assert logged_in.post(f"/account/webhooks/{webhook.id}/deliveries/{latest.id}/resend").status_code == 302
    run_webhook_jobs(app)
    body = json.loads(receiver.requests[-1]["body"])
    assert body["run"]["id"] == run.id and body["delivery"] != latest.delivery_id
    page = logged_in.get(f"/account/webhooks/{webhook.id}").get_data(as_text=True)
    assert "This webhook is disabled" not in page and "delivered" in page


def test_a_test_ping_from_the_page(app, logged_in, receiver):
    webhook, _ = services.create_webhook(logged_in.user, receiver.url, ["evaluation.finished"])
    answer = logged_in.post(f"/account/webhooks/{webhook.id}/ping", follow_redirects=True)
    assert any("test delivery" in m for m in flashes(answer.data))
    run_webhook_jobs(app)
    assert [json.loads(r["body"])["event"] for r in receiver.requests] == ["ping"]


def test_deleting_a_webhook_or_the_account_removes_the_deliveries(app, client, make_user):
    from app.blueprints.auth.deletion import delete_own_account

    alice = make_user("alice")
    login(client)
    for n in range(2):
        webhook, _ = services.create_webhook(alice, f"https://example.com/{n}", ["run.finished"])
        db.session.add(WebhookDelivery(webhook_id=webhook.id, delivery_id="d", event="ping", occurred_at=utcnow()))
    db.session.commit()
    assert client.post(f"/account/webhooks/{webhook.id}/delete").status_code == 302
    assert db.session.query(Webhook).count() == 1 and db.session.query(WebhookDelivery).count() == 1
    delete_own_account(alice, "correct horse")
    assert db.session.query(Webhook).count() == 0 and db.session.query(WebhookDelivery).count() == 0


def test_rotating_the_secret_from_the_page_shows_the_new_one_once(app, logged_in, receiver):
    import hashlib
    import hmac

    webhook, old = services.create_webhook(logged_in.user, receiver.url, ["run.finished"])
    base = f"/account/webhooks/{webhook.id}"
    page = logged_in.get(base).get_data(as_text=True)
    assert f'action="{base}/secret"' in page and "Rotate the signing secret?" in page  # asks first (data-confirm)
    assert logged_in.post(base + "/secret", csrf=False).status_code == 400
    assert db.session.get(Webhook, webhook.id).secret == old
    answer = logged_in.post(base + "/secret")
    assert answer.status_code == 200
    db.session.expire_all()
    new = db.session.get(Webhook, webhook.id).secret
    shown = answer.get_data(as_text=True)
    assert new != old and new.startswith("whsec_") and f'value="{new}"' in shown and old not in shown
    assert 'data-copy="#new-secret"' in shown and "shown only this once" in shown
    assert new not in logged_in.get(base).get_data(as_text=True)
    logged_in.post(base + "/ping")
    run_webhook_jobs(app)
    [request] = receiver.requests
    assert request["headers"]["X-Studio-Signature"] == (
        "sha256=" + hmac.new(new.encode(), request["body"], hashlib.sha256).hexdigest())
