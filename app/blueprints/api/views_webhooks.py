"""API: the caller's webhooks (the services of the account's Webhooks page)."""
from app.blueprints.api import bp
from app.blueprints.api.contract import Op, operation
from app.blueprints.api.schemas.webhooks import (
    DeliveryPageOut, DeliveryQuery, DeliveryQueuedOut, WebhookCreatedOut, WebhookIn, WebhookListOut, WebhookOut,
)
from app.blueprints.webhooks import services
from app.blueprints.webhooks.models import Webhook, WebhookDelivery

TAG = "Webhooks"
CREATE_HELP = ("Each delivery is a POST of JSON {event, delivery, timestamp, webhook_id, and the object under `run`, "
               "`evaluation` or `import`, exactly as GET of it answers}, with headers X-Studio-Event, "
               "X-Studio-Delivery and X-Studio-Signature (sha256=<hex HMAC-SHA256 of the body with the secret>). "
               "A 2xx answer within 10 s counts as delivered; otherwise it is tried again, up to 5 attempts. "
               "Only objects you can see at delivery time are sent.")


ROTATE_HELP = ("The answer holds the new secret, shown only there. The old secret signs nothing from now on, "
               "not even the deliveries already queued or being retried: update your receiver before the next one.")


def _english(line: dict | str | None) -> str | None:
    """A stored line's English text (the API's language)."""
    return line.get("message") if isinstance(line, dict) else line


def webhook_doc(webhook: Webhook) -> dict:
    return {"id": webhook.id, "url": webhook.url, "events": list(webhook.events or []),
            "dataset_id": webhook.dataset_id, "enabled": webhook.enabled, "failures_in_row": webhook.failures_in_row,
            "disabled_reason": _english(webhook.disabled_reason), "created_at": webhook.created_at}


def delivery_doc(row: WebhookDelivery) -> dict:
    return {"id": row.id, "delivery_id": row.delivery_id, "event": row.event, "object_id": row.object_id,
            "occurred_at": row.occurred_at, "attempt": row.attempt, "ok": row.ok, "status_code": row.status_code,
            "error": _english(row.error), "duration_ms": row.duration_ms, "created_at": row.created_at}


@bp.get("/v1/webhooks")
@operation(Op("Your webhooks, newest first", TAG, out=WebhookListOut))
def list_webhooks(user, data):
    return {"webhooks": [webhook_doc(w) for w in services.list_webhooks(user)]}


@bp.post("/v1/webhooks")
@operation(Op("Add a webhook: the studio calls its URL when your work finishes", TAG, body=WebhookIn,
              out=WebhookCreatedOut, status=201, errors=(422,), description=CREATE_HELP))
def create_webhook(user, data):
    webhook, secret = services.create_webhook(user, data["url"], data["events"], data.get("dataset_id"))
    return {**webhook_doc(webhook), "secret": secret}


@bp.get("/v1/webhooks/<int:webhook_id>")
@operation(Op("One of your webhooks (never its secret)", TAG, out=WebhookOut))
def get_webhook(user, data, webhook_id: int):
    return webhook_doc(services.get_webhook_for(user, webhook_id))


@bp.get("/v1/webhooks/<int:webhook_id>/deliveries")
@operation(Op("A webhook's recorded delivery attempts, newest first, a page at a time (by key)", TAG,
              query=DeliveryQuery, out=DeliveryPageOut,
              description="Follow `older` (as `before`) to the next page. Every attempt is one entry: a delivery "
                          "tried three times shows three, sharing `delivery_id`."))
def list_deliveries(user, data, webhook_id: int):
    page = services.delivery_page(user, webhook_id, data.get("before"), data.get("after"), data["limit"])
    return {"deliveries": [delivery_doc(row) for row in page.deliveries], "total": page.total,
            "older": page.older, "newer": page.newer}


@bp.post("/v1/webhooks/<int:webhook_id>/secret")
@operation(Op("Give a webhook a new signing secret", TAG, out=WebhookCreatedOut, description=ROTATE_HELP))
def rotate_secret(user, data, webhook_id: int):
    webhook, secret = services.rotate_secret(user, webhook_id)
    return {**webhook_doc(webhook), "secret": secret}


@bp.delete("/v1/webhooks/<int:webhook_id>")
@operation(Op("Delete one of your webhooks, with its recorded deliveries", TAG, status=204))
def delete_webhook(user, data, webhook_id: int):
    services.delete_webhook(user, webhook_id)


@bp.post("/v1/webhooks/<int:webhook_id>/test")
@operation(Op("Send a test delivery (event `ping`, one attempt) in the background", TAG, out=DeliveryQueuedOut,
              status=202, errors=(503,)))
def test_webhook(user, data, webhook_id: int):
    return {"delivery_id": services.send_ping(user, webhook_id)}
