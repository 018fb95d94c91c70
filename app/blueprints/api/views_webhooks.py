"""API: the caller's webhooks (the services of the account's Webhooks page)."""
from app.blueprints.api import bp
from app.blueprints.api.contract import Op, operation
from app.blueprints.api.schemas.webhooks import DeliveryQueuedOut, WebhookCreatedOut, WebhookIn, WebhookListOut
from app.blueprints.webhooks import services
from app.blueprints.webhooks.models import Webhook

TAG = "Webhooks"
CREATE_HELP = ("Each delivery is a POST of JSON {event, delivery, timestamp, webhook_id, and the object under `run`, "
               "`evaluation` or `import`, exactly as GET of it answers}, with headers X-Studio-Event, "
               "X-Studio-Delivery and X-Studio-Signature (sha256=<hex HMAC-SHA256 of the body with the secret>). "
               "A 2xx answer within 10 s counts as delivered; otherwise it is tried again, up to 5 attempts. "
               "Only objects you can see at delivery time are sent.")


def webhook_doc(webhook: Webhook) -> dict:
    reason = webhook.disabled_reason
    return {"id": webhook.id, "url": webhook.url, "events": list(webhook.events or []),
            "dataset_id": webhook.dataset_id, "enabled": webhook.enabled, "failures_in_row": webhook.failures_in_row,
            "disabled_reason": reason.get("message") if isinstance(reason, dict) else reason,
            "created_at": webhook.created_at}


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


@bp.delete("/v1/webhooks/<int:webhook_id>")
@operation(Op("Delete one of your webhooks, with its recorded deliveries", TAG, status=204))
def delete_webhook(user, data, webhook_id: int):
    services.delete_webhook(user, webhook_id)


@bp.post("/v1/webhooks/<int:webhook_id>/test")
@operation(Op("Send a test delivery (event `ping`, one attempt) in the background", TAG, out=DeliveryQueuedOut,
              status=202, errors=(503,)))
def test_webhook(user, data, webhook_id: int):
    return {"delivery_id": services.send_ping(user, webhook_id)}
