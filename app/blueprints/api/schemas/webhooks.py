"""Webhooks: addresses the studio calls when a run, an evaluation or an import finishes; their deliveries."""
from __future__ import annotations

from marshmallow import fields, validate

from app.blueprints.api.fields import Id, Text, UtcDateTime
from app.blueprints.api.schemas.common import Input, Output, Query
from app.blueprints.api.schemas.images import CURSOR
from app.blueprints.webhooks.addresses import URL_MAX
from app.blueprints.webhooks.delivery import KEEP
from app.blueprints.webhooks.models import Webhook
from app.blueprints.webhooks.payloads import PING
from app.blueprints.webhooks.services import SHOWN

EVENT = fields.String(validate=validate.OneOf(Webhook.EVENTS))


class WebhookIn(Input):
    url = Text(URL_MAX, min_length=1, required=True, metadata={
        "description": "The address to call: scheme `http` or `https`, no user name or password, no #fragment. "
                       "On a server that does not allow private addresses (production, unless "
                       "WEBHOOKS_ALLOW_PRIVATE=1), a host that resolves to a loopback, private or link-local "
                       "address is refused (422)."})
    events = fields.List(EVENT, required=True, validate=validate.Length(min=1, max=len(Webhook.EVENTS)), metadata={
        "description": "run.finished: a training run succeeded, failed or was cancelled; evaluation.finished; "
                       "import.finished (images or labels)."})
    dataset_id = Id(allow_none=True, load_default=None, metadata={
        "description": "Only about this dataset (one you can see); null or left out: every dataset you can see."})


class WebhookOut(Output):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    events = fields.List(EVENT, required=True)
    dataset_id = fields.Integer(required=True, allow_none=True)
    enabled = fields.Boolean(required=True, metadata={
        "description": "False once it failed WEBHOOK_DISABLE_AFTER (20) times in a row; the page enables it again."})
    failures_in_row = fields.Integer(required=True)
    disabled_reason = fields.String(required=True, allow_none=True)
    created_at = UtcDateTime(required=True)


class WebhookCreatedOut(WebhookOut):
    secret = fields.String(required=True, metadata={
        "description": "The signing secret, shown only in this answer: X-Studio-Signature is "
                       "sha256=<hex HMAC-SHA256 of the request body with this secret>."})


class DeliveryQuery(Query):
    before = fields.Integer(validate=CURSOR, metadata={
        "description": "Attempts older than this id: the `older` cursor of the previous answer."})
    after = fields.Integer(validate=CURSOR, metadata={
        "description": "The page just newer than this id: the `newer` cursor of an answer."})
    limit = fields.Integer(load_default=SHOWN, validate=validate.Range(min=1, max=KEEP))


class DeliveryOut(Output):
    id = fields.Integer(required=True, metadata={"description": "This attempt (the `before` / `after` key)."})
    delivery_id = fields.String(required=True, metadata={
        "description": "The X-Studio-Delivery header: the attempts of one delivery share it."})
    event = fields.String(required=True, validate=validate.OneOf([*Webhook.EVENTS, PING]))
    object_id = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The run, evaluation or import; null for a ping."})
    occurred_at = UtcDateTime(required=True, metadata={"description": "When the event happened."})
    attempt = fields.Integer(required=True, metadata={"description": "1 for the first try of a delivery."})
    ok = fields.Boolean(required=True, metadata={"description": "The receiver answered 2xx in time."})
    status_code = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The receiver's HTTP status; null when it did not answer."})
    error = fields.String(required=True, allow_none=True, metadata={"description": "Why it failed, when it did."})
    duration_ms = fields.Integer(required=True)
    created_at = UtcDateTime(required=True, metadata={"description": "When this attempt was made."})


class DeliveryPageOut(Output):
    deliveries = fields.List(fields.Nested(DeliveryOut), required=True, metadata={"description": "Newest first."})
    total = fields.Integer(required=True, metadata={
        "description": f"Attempts recorded for the webhook (the latest {KEEP} are kept)."})
    older = fields.Integer(required=True, allow_none=True,
                           metadata={"description": "Pass as `before` for the next (older) page; null at the end."})
    newer = fields.Integer(required=True, allow_none=True,
                           metadata={"description": "Pass as `after` for the previous page; null on the first."})


class WebhookListOut(Output):
    webhooks = fields.List(fields.Nested(WebhookOut), required=True)


class DeliveryQueuedOut(Output):
    delivery_id = fields.String(required=True, metadata={"description": "The X-Studio-Delivery of the ping."})
