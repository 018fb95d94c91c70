"""Webhooks: addresses a user's scripts listen on, told when a run, an evaluation or an import finishes;
and every attempt to tell them (columns, relationships and invariants only)."""
from __future__ import annotations

from app.extensions import db
from app.models import utcnow


class Webhook(db.Model):
    """One address of a user's, with the events it wants and, optionally, the one dataset it is about.

    `secret` signs every delivery (HMAC-SHA256). Unlike an API token it cannot be kept as a hash: the
    server needs it to sign. It is shown once, when created, and never again by any page or answer.
    """
    __tablename__ = "webhooks"
    EVENTS = ("run.finished", "evaluation.finished", "import.finished")
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    url = db.Column(db.String(2000), nullable=False)
    events = db.Column(db.JSON, nullable=False, default=list)  # a subset of EVENTS
    # NULL: every dataset the user can see. A deleted dataset takes its webhooks with it.
    dataset_id = db.Column(db.Integer, db.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=True, index=True)
    secret = db.Column(db.String(80), nullable=False)
    enabled = db.Column(db.Boolean, nullable=False, default=True)
    # Failed attempts since the last one that succeeded; at WEBHOOK_DISABLE_AFTER the webhook is disabled.
    failures_in_row = db.Column(db.Integer, nullable=False, default=0)
    disabled_at = db.Column(db.DateTime, nullable=True)
    disabled_reason = db.Column(db.JSON, nullable=True)  # an app.i18n stored line: why it was disabled
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    user = db.relationship("User")
    dataset = db.relationship("Dataset")


class WebhookDelivery(db.Model):
    """One attempt to deliver one event to one webhook. The attempts of one delivery share `delivery_id`
    (the X-Studio-Delivery header); only the latest few hundred per webhook are kept."""
    __tablename__ = "webhook_deliveries"
    # a webhook's latest attempts, newest first (its page, and pruning the old ones)
    __table_args__ = (db.Index("ix_webhook_deliveries_webhook_id", "webhook_id", "id"),)
    id = db.Column(db.Integer, primary_key=True)
    webhook_id = db.Column(db.Integer, db.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False)
    delivery_id = db.Column(db.String(36), nullable=False)
    event = db.Column(db.String(40), nullable=False)  # one of Webhook.EVENTS, or "ping"
    object_id = db.Column(db.Integer, nullable=True)  # the run, evaluation or import (none for a ping)
    occurred_at = db.Column(db.DateTime, nullable=False)  # when the event happened (the body's timestamp)
    attempt = db.Column(db.Integer, nullable=False, default=1)
    ok = db.Column(db.Boolean, nullable=False, default=False)
    status_code = db.Column(db.Integer, nullable=True)  # the receiver's HTTP status, when it answered
    error = db.Column(db.JSON, nullable=True)  # why it failed, when it did: an app.i18n stored line
    duration_ms = db.Column(db.Integer, nullable=False, default=0)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    webhook = db.relationship("Webhook")
