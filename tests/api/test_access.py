"""Who may call what, for every API operation: owner, editor, viewer, stranger, anonymous.

One row per endpoint: method, URL, what to send, the least role that may do it and its success status.
A role below it gets 403 (it can see the dataset) or 404 (a stranger: nothing to see), anonymous 401.
Each call runs against a fresh dataset world, so an allowed delete cannot hide the next role's answer."""
from __future__ import annotations

import pytest

from tests.api.conftest import ROLES, files, png

RANK = {"anonymous": 0, "stranger": 1, "viewer": 2, "editor": 3, "owner": 4}
ANY = "stranger"  # operations on no particular object: every signed-in caller
SELF = "self"  # the caller's own objects (alice's webhook): anyone else gets 404, whatever their dataset role

# endpoint: (method, url, request kwargs, least role, success status, world options)
TABLE = {
    "api.list_datasets": ("GET", "/api/v1/datasets", {}, ANY, 200, {}),
    "api.create_dataset": ("POST", "/api/v1/datasets", {"json": {"name": "New"}}, ANY, 201, {}),
    "api.get_dataset": ("GET", "/api/v1/datasets/{d}", {}, "viewer", 200, {}),
    "api.update_dataset": ("PATCH", "/api/v1/datasets/{d}", {"json": {"name": "Renamed"}}, "owner", 200, {}),
    "api.delete_dataset": ("DELETE", "/api/v1/datasets/{d}", {}, "owner", 202, {}),
    "api.list_shares": ("GET", "/api/v1/datasets/{d}/shares", {}, "owner", 200, {}),
    "api.share_dataset": ("POST", "/api/v1/datasets/{d}/shares", {"json": {"username": "eve", "role": "viewer"}},
                          "owner", 200, {}),
    "api.revoke_share": ("DELETE", "/api/v1/datasets/{d}/shares/{s}", {}, "owner", 204, {}),
    "api.give_dataset": ("POST", "/api/v1/datasets/{d}/owner", {"json": {"username": "eve"}}, "owner", 200, {}),
    "api.list_classes": ("GET", "/api/v1/datasets/{d}/classes", {}, "viewer", 200, {}),
    "api.add_class": ("POST", "/api/v1/datasets/{d}/classes", {"json": {"name": "green"}}, "editor", 201, {}),
    "api.update_class": ("PATCH", "/api/v1/datasets/{d}/classes/{l}", {"json": {"name": "crimson", "move": "down"}},
                         "editor", 200, {}),
    "api.delete_class": ("DELETE", "/api/v1/datasets/{d}/classes/{l}", {}, "editor", 200, {}),
    "api.merge_class": ("POST", "/api/v1/datasets/{d}/classes/{l}/merge", {"json": {"into": "{l2}"}}, "editor", 200,
                        {}),
    "api.list_images": ("GET", "/api/v1/datasets/{d}/images?class=unlabeled", {}, "viewer", 200, {}),
    "api.upload_images": ("POST", "/api/v1/datasets/{d}/images", {"data": lambda: {"files": files(("n.png", png(7)))}},
                          "editor", 200, {}),
    "api.get_image_info": ("GET", "/api/v1/datasets/{d}/images/{i}", {}, "viewer", 200, {}),
    "api.get_image_file": ("GET", "/api/v1/datasets/{d}/images/{i}/file", {}, "viewer", 200, {}),
    "api.label_images": ("POST", "/api/v1/datasets/{d}/images/labels", {"json": {"image_ids": ["{i}"], "class_id": None}},
                         "editor", 200, {}),
    "api.import_labels": ("POST", "/api/v1/datasets/{d}/labels",
                          {"data": lambda: {"file": files(("l.csv", b"filename,label\n0-0.png,blue\n"))[0]}},
                          "editor", 200, {}),
    "api.delete_many_images": ("POST", "/api/v1/datasets/{d}/images/delete", {"json": {"image_ids": ["{i}", "{i2}"]}},
                               "editor", 200, {}),
    "api.delete_image": ("DELETE", "/api/v1/datasets/{d}/images/{i}", {}, "editor", 204, {}),
    "api.list_imports": ("GET", "/api/v1/datasets/{d}/imports", {}, "viewer", 200, {}),
    "api.get_import": ("GET", "/api/v1/datasets/{d}/imports/{m}", {}, "viewer", 200, {}),
    "api.cancel_import": ("POST", "/api/v1/datasets/{d}/imports/{m}/cancel", {}, "editor", 200, {}),
    "api.list_networks": ("GET", "/api/v1/networks", {}, ANY, 200, {}),
    "api.list_runs": ("GET", "/api/v1/runs", {}, ANY, 200, {}),
    "api.start_run": ("POST", "/api/v1/datasets/{d}/runs", {"json": {
        "name": "m", "architecture": "small_cnn", "mode": "scratch", "options": {"image_size": 32, "epochs": 1}}},
        "viewer", 201, {}),
    "api.get_run": ("GET", "/api/v1/runs/{r}", {}, "viewer", 200, {}),
    "api.cancel_run": ("POST", "/api/v1/runs/{q}/cancel", {}, "editor", 200, {"queued": True}),
    "api.retry_run": ("POST", "/api/v1/runs/{f}/retry", {}, "viewer", 201, {}),
    "api.delete_run": ("DELETE", "/api/v1/runs/{f}", {}, "editor", 204, {}),
    "api.run_metrics": ("GET", "/api/v1/runs/{r}/metrics", {}, "viewer", 200, {}),
    "api.run_history": ("GET", "/api/v1/runs/{r}/history", {}, "viewer", 200, {}),
    "api.download_file": ("GET", "/api/v1/runs/{r}/files/card", {}, "viewer", 200, {}),
    "api.start_evaluation": ("POST", "/api/v1/runs/{r}/evaluations", {"json": {"dataset_id": "{d}"}}, "viewer", 202,
                             {}),
    "api.get_evaluation": ("GET", "/api/v1/runs/{r}/evaluations/{e}", {}, "viewer", 200, {}),
    "api.list_models": ("GET", "/api/v1/models", {}, ANY, 200, {}),
    "api.update_model": ("PATCH", "/api/v1/models/{r}", {"json": {"public": True}}, "editor", 200, {}),
    "api.get_me": ("GET", "/api/v1/me", {}, ANY, 200, {}),
    "api.set_default_model": ("PUT", "/api/v1/me/default-model", {"json": {"model_id": "{r}"}}, "viewer", 200, {}),
    "api.list_webhooks": ("GET", "/api/v1/webhooks", {}, ANY, 200, {}),
    "api.create_webhook": ("POST", "/api/v1/webhooks", {"json": {"url": "https://example.com/hook",
                                                                 "events": ["run.finished"]}}, ANY, 201, {}),
    "api.get_webhook": ("GET", "/api/v1/webhooks/{w}", {}, SELF, 200, {}),
    "api.list_deliveries": ("GET", "/api/v1/webhooks/{w}/deliveries", {}, SELF, 200, {}),
    "api.rotate_secret": ("POST", "/api/v1/webhooks/{w}/secret", {}, SELF, 200, {}),
    "api.delete_webhook": ("DELETE", "/api/v1/webhooks/{w}", {}, SELF, 204, {}),
    "api.test_webhook": ("POST", "/api/v1/webhooks/{w}/test", {}, SELF, 202, {}),
}
# Not about a dataset's access rules: the documents, and /predict and /explain (tests/predict/test_api.py and
# test_explain.py: unknown and others' private models are 404, public ones need no token, anonymous without
# a default is 401).
# Restoring a deleted run: 404 for all but whoever could delete it (tests/training/test_model_undo.py).
ELSEWHERE = {"api.openapi", "api.api_docs", "predict.predict_images", "predict.predict_with_model",
             "predict.explain_image", "api.restore_run"}


def _fill(value, ids: dict):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def expected(role: str, least: str, success: int) -> int:
    if role == "anonymous":
        return 401
    if least == SELF:
        return success if role == "owner" else 404
    if RANK[role] >= RANK[least]:
        return success
    return 404 if role == "stranger" else 403


def test_the_table_covers_every_api_operation(app):
    documented = {rule.endpoint for rule in app.url_map.iter_rules()
                  if getattr(app.view_functions[rule.endpoint], "api_op", None) or rule.endpoint.startswith("api.")}
    assert documented - set(TABLE) - ELSEWHERE == set(), "add the new operations to TABLE"
    for endpoint, (method, *_rest) in TABLE.items():
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        assert method in rule.methods, endpoint


@pytest.mark.parametrize("endpoint", sorted(TABLE))
def test_access_rules(endpoint, api_as, world):
    method, url, kwargs, least, success, options = TABLE[endpoint]
    answers = {}
    for role in ROLES:
        ids = world(**options)
        sent = {k: (v() if callable(v) else _fill(v, ids)) for k, v in kwargs.items()}
        response = api_as(role).call(method, url.format(**ids), **sent)
        answers[role] = response.status_code
        if response.status_code >= 400:
            assert response.is_json and {"error", "status", "code"} <= set(response.json), (role, response.data)
    assert answers == {role: expected(role, least, success) for role in ROLES}
