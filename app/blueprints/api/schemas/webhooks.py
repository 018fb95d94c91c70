"""Webhooks: addresses the studio calls when a run, an evaluation or an import finishes."""
from __future__ import annotations

from marshmallow import fields, validate

from app.blueprints.api.fields import Id, Text, UtcDateTime
from app.blueprints.api.schemas.common import Input, Output
from app.blueprints.webhooks.addresses import URL_MAX
from app.blueprints.webhooks.models import Webhook

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


class WebhookListOut(Output):
    webhooks = fields.List(fields.Nested(WebhookOut), required=True)


class DeliveryQueuedOut(Output):
    delivery_id = fields.String(required=True, metadata={"description": "The X-Studio-Delivery of the ping."})
