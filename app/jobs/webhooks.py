"""The RQ tasks behind webhooks (queue <RQ_QUEUE>-webhooks): find the webhooks an event concerns, and
deliver to one (thin adapters around app/blueprints/webhooks/delivery.py)."""
from __future__ import annotations

import logging
from datetime import datetime

from app.blueprints.webhooks import delivery
from app.jobs.context import with_app_context

log = logging.getLogger(__name__)


@with_app_context
def dispatch_event(event: str, object_id: int, occurred_at: datetime) -> dict:
    """RQ task: queue a delivery of `event` to each webhook that wants it."""
    queued = delivery.dispatch(event, object_id, occurred_at)
    log.info("webhooks %s %s: %d deliveries queued", event, object_id, queued)
    return {"event": event, "object_id": object_id, "queued": queued}


@with_app_context
def deliver(webhook_id: int, delivery_id: str, event: str, object_id: int | None, occurred_at: datetime,
            manual: bool = False) -> dict:
    """RQ task: one attempt at one delivery; raises when it failed, so that RQ retries it (and records it)."""
    try:
        status = delivery.deliver(webhook_id, delivery_id, event, object_id, occurred_at, manual)
    except delivery.DeliveryFailed as exc:
        log.warning("%s", exc)
        raise
    log.info("webhook=%s delivery=%s %s: %s", webhook_id, delivery_id, event, status)
    return {"webhook_id": webhook_id, "delivery_id": delivery_id, "status": status}
