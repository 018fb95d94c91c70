"""What a delivery says: the event, when it happened and the object exactly as the API's GET of it answers
(the same present.* functions and output schemas), for the webhook's owner - or nothing at all when the owner
cannot see that object any more (a dataset unshared since, a model deleted): access is checked here, at
delivery time, not only when the event happened."""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from flask import current_app

from app.blueprints.webhooks.models import Webhook
from app.errors import NotFound
from app.extensions import db
from app.models import Evaluation, Import, TrainingRun

PING = "ping"
SIGNATURE_HEADER = "X-Studio-Signature"


def sign(secret: str, body: bytes) -> str:
    """The X-Studio-Signature value: sha256=<hex HMAC-SHA256 of the body with the webhook's secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def dataset_ids(event: str, object_id: int) -> set[int]:
    """The datasets an event's object belongs to (an evaluation: its model's and the evaluated one)."""
    if event == "run.finished":
        run = db.session.get(TrainingRun, object_id)
        return {run.dataset_id} if run else set()
    if event == "evaluation.finished":
        evaluation = db.session.get(Evaluation, object_id)
        return {evaluation.dataset_id, evaluation.run.dataset_id} if evaluation and evaluation.run else set()
    if event == "import.finished":
        imp = db.session.get(Import, object_id)
        return {imp.dataset_id} if imp else set()
    return set()


def object_doc(webhook: Webhook, event: str, object_id: int) -> tuple[str, dict] | None:
    """(key, the API's document of the object) as the webhook's owner may see it now; None when they may
    not (or the object is gone, or lies outside the webhook's dataset)."""
    owner = webhook.user
    if owner is None or owner.is_disabled or owner.deleted_at is not None:
        return None
    if webhook.dataset_id is not None and webhook.dataset_id not in dataset_ids(event, object_id):
        return None
    # url_for outside a request, and the API's language (English) for any text in the documents
    with current_app.test_request_context("/api/v1/webhooks"):
        try:
            return _document(owner, event, object_id)
        except NotFound:
            return None


def _document(owner, event: str, object_id: int) -> tuple[str, dict] | None:
    from app.access import get_dataset_for, get_run_for
    from app.blueprints.api import present
    from app.blueprints.api.contract import instance
    from app.blueprints.api.schemas.evaluations import EvaluationOut
    from app.blueprints.api.schemas.images import ImportOut
    from app.blueprints.api.schemas.runs import RunOut
    from app.blueprints.api.views_evaluations import evaluation_doc
    from app.blueprints.training.evaluations import get_evaluation_for

    if event == "run.finished":
        return "run", instance(RunOut).dump(present.run_detail(get_run_for(owner, object_id)))
    if event == "evaluation.finished":
        found = db.session.get(Evaluation, object_id)
        if found is None:
            return None
        evaluation = get_evaluation_for(owner, found.run_id, found.id)
        return "evaluation", instance(EvaluationOut).dump(evaluation_doc(evaluation))
    if event == "import.finished":
        imp = db.session.get(Import, object_id)
        if imp is None:
            return None
        get_dataset_for(owner, imp.dataset_id)
        return "import", instance(ImportOut).dump(present.import_doc(imp))
    return None


def ping_doc(webhook: Webhook) -> tuple[str, dict]:
    return "webhook", {"id": webhook.id, "url": webhook.url, "events": list(webhook.events or []),
                       "dataset_id": webhook.dataset_id}


def body(webhook: Webhook, event: str, object_id: int | None, occurred_at: datetime, delivery_id: str) -> bytes | None:
    """The JSON body of one delivery; None when there is nothing the owner may be told."""
    found = ping_doc(webhook) if event == PING else object_doc(webhook, event, object_id)
    if found is None:
        return None
    key, doc = found
    payload = {"event": event, "delivery": delivery_id, "timestamp": occurred_at.isoformat(timespec="seconds") + "Z",
               "webhook_id": webhook.id, key: doc}
    return current_app.json.dumps(payload).encode()
