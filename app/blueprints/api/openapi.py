"""The OpenAPI 3 document, generated from the routes' Op declarations (contract.py) and their
marshmallow schemas: the same objects that load every request and dump every answer."""
from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from app.blueprints.api.contract import ERROR_TEXT, Op
from app.blueprints.api.fields import Upload
from app.blueprints.api.schemas.common import ErrorOut
from app.extensions import MAX_DB_INT
from app.i18n import N_

TITLE = "Image Classifier Studio API"
VERSION = "1.0"
# English in the document (the API speaks English); marked, so the /api/docs page shows it in the reader's
# language like the lines around it.
DESCRIPTION = N_(
    "Everything the studio's pages do, for scripts: datasets, images (upload, background imports, labels), "
    "classes, training runs, models and prediction. Authenticate with a personal API token from the "
    "API page: `Authorization: Bearer <token>`. The same access rules as the pages apply (a dataset "
    "you cannot see is a 404). Every error answers `{\"error\", \"status\", \"code\"}`; `code` is stable. "
    "400 means the request does not match this document; 422 that it does, but its values do not work.")
TAGS = [
    {"name": "Datasets", "description": "Create, change, share and delete datasets."},
    {"name": "Classes", "description": "The classes (labels) of a dataset."},
    {"name": "Images", "description": "Upload (loose files or a zip), list by key, label in bulk, delete."},
    {"name": "Imports", "description": "Background imports: progress and cancel."},
    {"name": "Training", "description": "Start, follow, cancel, delete (and restore) training runs; their "
                                        "metrics and files."},
    {"name": "Models", "description": "Trained models and their settings (public, default)."},
    {"name": "Prediction", "description": "Classify images (the prototype's contract, unchanged)."},
    {"name": "Webhooks", "description": "Addresses the studio calls (signed POSTs) when your work finishes."},
]
SECURITY = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "A personal API token (API page)."},
    "cookieSession": {"type": "apiKey", "in": "cookie", "name": "session",
                      "description": "The studio's own pages: a browser session with the X-CSRFToken header."},
}
RULE_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def build_spec(app: Flask) -> dict:
    """The whole document, from every route whose view carries an Op."""
    plugin = MarshmallowPlugin()
    spec = APISpec(TITLE, VERSION, "3.0.3", plugins=[plugin], info={"description": DESCRIPTION}, tags=TAGS)
    plugin.map_to_openapi_type(Upload, "string", "binary")
    for name, scheme in SECURITY.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("Error", schema=ErrorOut)
    for path, operations in _operations(app).items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operations(app: Flask) -> dict[str, dict]:
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        op = getattr(app.view_functions.get(rule.endpoint), "api_op", None)
        if op is None:
            continue
        path = RULE_ARG.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(op, rule, rule.endpoint)
    return paths


def _operation(op: Op, rule, endpoint: str) -> dict:
    doc = {"operationId": endpoint.replace(".", "_"), "summary": op.summary, "tags": [op.tag],
           "parameters": _path_parameters(rule, op), "responses": _responses(op)}
    if op.description:
        doc["description"] = op.description
    if op.query is not None:
        doc["parameters"].append({"in": "query", "schema": op.query})
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body}}}
    if op.form is not None:
        doc["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": op.form}}}
    doc["security"] = [{"bearerAuth": []}, {"cookieSession": []}] + ([{}] if op.auth == "optional" else [])
    return doc


def _path_parameters(rule, op: Op) -> list[dict]:
    params = []
    for converter, name in RULE_ARG.findall(rule.rule):
        if converter == "int":
            schema = {"type": "integer", "minimum": 1, "maximum": MAX_DB_INT}
        else:
            schema = op.path.get(name) or {"type": "string", "pattern": "^[^/]+$"}
        params.append({"in": "path", "name": name, "required": True, "schema": schema})
    return params


def _json(schema) -> dict:
    return {"application/json": {"schema": schema}}


def _responses(op: Op) -> dict:
    ok: dict = {"description": "OK" if op.status < 300 else "Accepted"}
    if op.status == 204:
        ok["description"] = "Done (no content)."
    elif op.out is not None:
        ok["content"] = _json(op.out)
    if op.files:
        ok.setdefault("content", {}).update(op.files)
    responses = {str(op.status): ok}
    for status, (schema, text) in op.more.items():
        responses[str(status)] = {"description": text, "content": _json(schema)}
    for status in op.error_statuses:
        responses[str(status)] = {"description": ERROR_TEXT.get(status, "Error."), "content": _json("Error")}
    return responses
