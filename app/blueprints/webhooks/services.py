"""Webhooks: a user's addresses told when their work finishes. Creating (the secret shown once), listing,
deleting, re-enabling, a new secret, a test ping, the recorded deliveries, sending one again; and `notify`,
the one call the training, evaluation and import code makes when one of theirs finishes (it only queues:
the delivery is a job)."""
from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from redis.exceptions import RedisError
from rq.job import Retry
from sqlalchemy import delete, desc, func, select

from app.access import get_dataset_for, visible_datasets_by_name
from app.blueprints.webhooks.addresses import check_url
from app.blueprints.webhooks.models import Webhook, WebhookDelivery
from app.blueprints.webhooks.payloads import PING
from app.errors import DomainError, NotFound, ValidationError
from app.extensions import db
from app.i18n import N_
from app.jobs import WEBHOOK_DELIVER, WEBHOOK_EVENT, enqueue, new_job_id
from app.keyset import Keyset
from app.models import Dataset, User, utcnow

log = logging.getLogger(__name__)
EVENTS = Webhook.EVENTS
SECRET_PREFIX = "whsec_"
SHOWN = 20  # attempts the webhook's page lists
EVENT_WORDS = {"run.finished": N_("a training run ended: succeeded, failed or cancelled"),
               "evaluation.finished": N_("an evaluation of a model on a dataset ended"),
               "import.finished": N_("an import of images or of labels ended")}


def create_webhook(user: User, url: str, events: list[str], dataset_id: int | None = None) -> tuple[Webhook, str]:
    """A new webhook of `user`; returns (row, secret): the secret is shown this once. 422 for a bad address,
    no event or too many webhooks; 404 for a dataset the user cannot see. Nothing is written on refusal."""
    url = check_url(url)
    chosen = [event for event in EVENTS if event in set(events or ())]
    if not chosen or len(chosen) != len(set(events)):
        raise ValidationError(_("Choose at least one event: %(events)s.", events=", ".join(EVENTS)))
    if dataset_id is not None:
        get_dataset_for(user, dataset_id)
    limit = current_app.config["WEBHOOKS_PER_USER"]
    if limit and db.session.scalar(select(func.count(Webhook.id)).where(Webhook.user_id == user.id)) >= limit:
        raise ValidationError(_("You have %(count)s webhooks, the most an account may have. Delete one first.",
                                count=limit))
    secret = _new_secret()
    webhook = Webhook(user_id=user.id, url=url, events=chosen, dataset_id=dataset_id, secret=secret)
    db.session.add(webhook)
    db.session.commit()
    log.info("webhook=%s created by user=%s for %s", webhook.id, user.id, ",".join(chosen))
    return webhook, secret


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def rotate_secret(user: User, webhook_id: int) -> tuple[Webhook, str]:
    """Give the webhook a new signing secret; returns (row, secret): the secret is shown this once. The old
    one signs nothing from now on: every delivery, queued ones too, reads the secret when it is sent."""
    webhook = get_webhook_for(user, webhook_id)
    secret = webhook.secret = _new_secret()
    db.session.commit()
    log.info("webhook=%s: secret rotated by user=%s", webhook.id, user.id)
    return webhook, secret


def list_webhooks(user: User) -> list[Webhook]:
    """The user's webhooks, newest first."""
    return list(db.session.scalars(select(Webhook).where(Webhook.user_id == user.id).order_by(Webhook.id.desc())))


def dataset_choices(user: User) -> list[Dataset]:
    """The datasets a webhook of the user's may be limited to: those they can see, by name."""
    return visible_datasets_by_name(user)


def get_webhook_for(user: User, webhook_id: int) -> Webhook:
    """One of the user's webhooks; anyone else's (or none) is a 404."""
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None or webhook.user_id != user.id:
        raise NotFound(_("This webhook does not exist."))
    return webhook


def delete_webhook(user: User, webhook_id: int) -> None:
    """Delete the webhook and every recorded attempt of it."""
    webhook = get_webhook_for(user, webhook_id)
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id))
    db.session.delete(webhook)
    db.session.commit()


def delete_all_of(user_id: int) -> None:
    """Account deletion: the user's webhooks and their attempts go (not committed)."""
    mine = select(Webhook.id).where(Webhook.user_id == user_id)
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id.in_(mine)))
    db.session.execute(delete(Webhook).where(Webhook.user_id == user_id))


def enable_webhook(user: User, webhook_id: int) -> Webhook:
    """Enable a webhook again (its run of failures starts from zero)."""
    webhook = get_webhook_for(user, webhook_id)
    webhook.enabled, webhook.failures_in_row = True, 0
    webhook.disabled_at = webhook.disabled_reason = None
    db.session.commit()
    return webhook


def recent_deliveries(webhook: Webhook, limit: int = SHOWN) -> list[WebhookDelivery]:
    """The webhook's latest attempts, newest first."""
    return list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
                                   .order_by(WebhookDelivery.id.desc()).limit(limit)))


@dataclass(frozen=True)
class DeliveryPage:
    """One page of a webhook's recorded attempts, newest first, and the keys of its neighbours."""

    deliveries: list[WebhookDelivery]
    total: int
    older: int | None  # `before` of the next (older) page; None at the end
    newer: int | None  # `after` of the previous (newer) page; None on the first


def delivery_page(user: User, webhook_id: int, before: int | None = None, after: int | None = None,
                  limit: int = SHOWN) -> DeliveryPage:
    """A page of the user's webhook's attempts by key: older than `before`, or the page just newer than
    `after`, or the newest. Another user's webhook is a 404."""
    webhook = get_webhook_for(user, webhook_id)
    mine = WebhookDelivery.webhook_id == webhook.id
    rows, newer, older = _delivery_rows(mine, before, after, limit)
    total = db.session.scalar(select(func.count(WebhookDelivery.id)).where(mine)) or 0  # at most delivery.KEEP
    return DeliveryPage(rows, total, older=rows[-1].id if older else None, newer=rows[0].id if newer else None)


def _delivery_rows(mine, before: int | None, after: int | None, limit: int) -> tuple[list, bool, bool]:
    """(attempts newest first, newer ones exist, older ones exist) for one step along the
    (webhook_id, id) index."""
    keyset = Keyset(_attempts, lambda condition: bool(_attempts(condition, desc(WebhookDelivery.id), 1)),
                    WebhookDelivery.id)
    return keyset.step(mine, before, after, limit)


def _attempts(where, order, limit: int) -> list[WebhookDelivery]:
    return list(db.session.scalars(select(WebhookDelivery).where(where).order_by(order).limit(limit)))


def send_ping(user: User, webhook_id: int) -> str:
    """Queue a test delivery (event "ping", one attempt, sent even when disabled); returns its id."""
    webhook = get_webhook_for(user, webhook_id)
    return _queue_now(webhook, PING, None, utcnow())


def send_again(user: User, webhook_id: int, attempt_id: int) -> str:
    """Queue a recorded delivery again (a new delivery id, one attempt, the object as it is now)."""
    webhook = get_webhook_for(user, webhook_id)
    row = db.session.get(WebhookDelivery, attempt_id)
    if row is None or row.webhook_id != webhook.id:
        raise NotFound(_("This delivery does not exist."))
    return _queue_now(webhook, row.event, row.object_id, row.occurred_at)


def _queue_now(webhook: Webhook, event: str, object_id: int | None, occurred_at: datetime) -> str:
    """A delivery the user asked for: one attempt, queued now; 503 when the queue does not answer."""
    try:
        return queue_delivery(webhook, event, object_id, occurred_at, manual=True)
    except RedisError:
        log.exception("webhook=%s: %s not queued", webhook.id, event)
        raise DomainError(_("The job queue is not reachable right now. Try again in a minute."), 503) from None


def queue_delivery(webhook: Webhook, event: str, object_id: int | None, occurred_at: datetime,
                   manual: bool = False) -> str:
    """Queue the delivery job; automatic ones are tried WEBHOOK_ATTEMPTS times with growing pauses."""
    cfg = current_app.config
    delivery_id = str(uuid.uuid4())
    retries = cfg["WEBHOOK_ATTEMPTS"] - 1
    retry = None if manual or retries < 1 else Retry(max=retries, interval=cfg["WEBHOOK_RETRY_INTERVALS"])
    enqueue(WEBHOOK_DELIVER, webhook.id, delivery_id, event, object_id, occurred_at, manual,
            job_id=f"webhook-{webhook.id}-{delivery_id}", description=f"webhook {webhook.id} {event} {object_id}",
            retry=retry)
    return delivery_id


def notify(event: str, object_id: int) -> None:
    """`event` happened to object `object_id` (a run, evaluation or import that just finished): queue the
    job that finds the webhooks to tell. Cheap, and never raises: the caller's work is done and stays done."""
    try:
        with db.engine.connect() as conn:  # not the caller's session: its transaction stays as it was
            wanted = conn.scalar(select(Webhook.id).where(Webhook.enabled.is_(True)).limit(1))
        if wanted is not None:
            enqueue(WEBHOOK_EVENT, event, object_id, utcnow(), job_id=new_job_id(WEBHOOK_EVENT, object_id),
                    description=f"webhook event {event} {object_id}")
    except Exception:
        log.exception("webhooks: %s %s not queued", event, object_id)
