"""The jobs' side of webhooks: fan an event out to the webhooks that want it, deliver one (signed, on a
short leash: transport.py), record every attempt, disable a webhook that keeps failing."""
from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import delete, or_, select, update

from app.blueprints.webhooks import payloads, services, transport
from app.blueprints.webhooks.models import Webhook, WebhookDelivery
from app.extensions import db
from app.i18n import N_, stored_line
from app.models import Dataset, DatasetShare, utcnow

log = logging.getLogger(__name__)
KEEP = 200  # attempts kept per webhook (its page shows the latest 20)


class DeliveryFailed(Exception):
    """This attempt failed: raised so that RQ retries the job (Retry) and records the failure."""


def dispatch(event: str, object_id: int, occurred_at: datetime) -> int:
    """Queue one delivery for every enabled webhook that wants `event` about this object, of the users who
    can see its dataset now (each delivery checks again when it runs). Returns how many were queued."""
    datasets = payloads.dataset_ids(event, object_id)
    if not datasets:
        return 0
    viewers = select(Dataset.owner_id).where(Dataset.id.in_(datasets)).union(
        select(DatasetShare.user_id).where(DatasetShare.dataset_id.in_(datasets)))
    candidates = db.session.scalars(select(Webhook).where(
        Webhook.enabled.is_(True), Webhook.user_id.in_(viewers),
        or_(Webhook.dataset_id.is_(None), Webhook.dataset_id.in_(datasets)))).all()
    queued = 0
    for webhook in candidates:
        if event in (webhook.events or []):
            services.queue_delivery(webhook, event, object_id, occurred_at)
            queued += 1
    db.session.commit()  # end the read transaction
    return queued


def deliver(webhook_id: int, delivery_id: str, event: str, object_id: int | None, occurred_at: datetime,
            manual: bool = False) -> str:
    """One attempt (RQ runs the job again for the next ones). 'delivered', 'skipped' (webhook gone or
    disabled, or the owner may not see the object any more: nothing sent, nothing recorded); raises
    DeliveryFailed when the receiver did not take it."""
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None or not (webhook.enabled or manual):
        return "skipped"
    body = payloads.body(webhook, event, object_id, occurred_at, delivery_id)
    if body is None:
        log.info("webhook=%s %s %s: not sent, its owner cannot see it", webhook_id, event, object_id)
        db.session.commit()
        return "skipped"
    headers = {"Content-Type": "application/json", "User-Agent": "ImageClassifierStudio-Webhook/1",
               payloads.SIGNATURE_HEADER: payloads.sign(webhook.secret, body), "X-Studio-Event": event,
               "X-Studio-Delivery": delivery_id}
    url = webhook.url
    db.session.commit()  # no transaction stays open while the receiver takes its time
    outcome = transport.post(url, body, headers, current_app.config["WEBHOOK_TIMEOUT_S"])
    still_enabled = record(webhook_id, (delivery_id, event, object_id, occurred_at), outcome)
    if outcome.ok:
        return "delivered"
    if manual or not still_enabled:
        return "failed"
    raise DeliveryFailed(f"webhook={webhook_id} delivery={delivery_id}: {outcome.error['message']}")


def record(webhook_id: int, what: tuple, outcome: transport.Outcome) -> bool:
    """Write the attempt and the webhook's run of failures (disabling it at WEBHOOK_DISABLE_AFTER); keep
    the latest KEEP attempts. Returns whether the webhook is still enabled."""
    delivery_id, event, object_id, occurred_at = what
    attempt = 1 + (db.session.scalar(select(db.func.count(WebhookDelivery.id)).where(
        WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.delivery_id == delivery_id)) or 0)
    db.session.add(WebhookDelivery(
        webhook_id=webhook_id, delivery_id=delivery_id, event=event, object_id=object_id, occurred_at=occurred_at,
        attempt=attempt, ok=outcome.ok, status_code=outcome.status_code, error=outcome.error,
        duration_ms=outcome.duration_ms))
    failures = 0 if outcome.ok else Webhook.failures_in_row + 1
    db.session.execute(update(Webhook).where(Webhook.id == webhook_id).values(failures_in_row=failures))
    webhook = db.session.get(Webhook, webhook_id)
    db.session.refresh(webhook)
    limit = current_app.config["WEBHOOK_DISABLE_AFTER"]
    if webhook.enabled and limit and webhook.failures_in_row >= limit:
        webhook.enabled, webhook.disabled_at = False, utcnow()
        webhook.disabled_reason = stored_line(
            N_("Disabled after %(count)s failed attempts in a row. The last one: %(reason)s"),
            count=webhook.failures_in_row, reason=outcome.error)
        log.warning("webhook=%s: disabled after %s failed attempts", webhook_id, webhook.failures_in_row)
    _prune(webhook_id)
    db.session.commit()
    return webhook.enabled


def _prune(webhook_id: int) -> None:
    oldest_kept = db.session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook_id)
                                    .order_by(WebhookDelivery.id.desc()).offset(KEEP - 1).limit(1))
    if oldest_kept is not None:
        db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id,
                                                         WebhookDelivery.id < oldest_kept))
