"""The OpenAPI document (/api/openapi.json) and a readable page made from it (/api/docs): both served
by this app, nothing from a CDN."""
from __future__ import annotations

from flask import current_app, jsonify, render_template

from app.blueprints.api import bp
from app.blueprints.api.openapi import build_spec


def spec() -> dict:
    """The document, built once per process from the routes (they do not change while it runs)."""
    cached = current_app.extensions.get("openapi_spec")
    if cached is None:
        cached = current_app.extensions["openapi_spec"] = build_spec(current_app)
    return cached


@bp.get("/openapi.json")
def openapi():
    return jsonify(spec())


@bp.get("/docs")
def api_docs():
    document = spec()
    return render_template("api/docs.html", doc=document, groups=operation_groups(document))


def _resolve(document: dict, schema: dict) -> dict:
    ref = schema.get("$ref", "")
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def _type(document: dict, schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"array of {_type(document, schema.get('items', {}))}"
    text = schema.get("type", "any") + (f" ({schema['format']})" if "format" in schema else "")
    if "enum" in schema:
        text += ": " + " | ".join(str(v) for v in schema["enum"])
    return text + (" or null" if schema.get("nullable") else "")


def _fields(document: dict, schema: dict) -> list[dict]:
    schema = _resolve(document, schema)
    required = set(schema.get("required", []))
    return [{"name": name, "type": _type(document, prop), "required": name in required,
             "description": _resolve(document, prop).get("description", "")}
            for name, prop in schema.get("properties", {}).items()]


def _body(document: dict, op: dict) -> dict | None:
    content = (op.get("requestBody") or {}).get("content") or {}
    for media, entry in content.items():
        return {"media": media, "fields": _fields(document, entry["schema"])}
    return None


def _answer(document: dict, response: dict) -> list[dict]:
    for entry in (response.get("content") or {}).values():
        if "$ref" in entry.get("schema", {}):
            return _fields(document, entry["schema"])
    return []


def operation_groups(document: dict) -> list[dict]:
    """Operations by tag, in the document's tag order, with fields resolved for reading."""
    groups = {tag["name"]: {"tag": tag, "ops": []} for tag in document.get("tags", [])}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            ok = next(iter(op["responses"].values()))
            groups[op["tags"][0]]["ops"].append({
                "method": method.upper(), "path": path, "summary": op.get("summary", ""), "id": op["operationId"],
                "description": op.get("description", ""), "params": op.get("parameters", []),
                "body": _body(document, op), "answer": _answer(document, ok),
                "responses": [(status, r.get("description", "")) for status, r in op["responses"].items()]})
    return [g for g in groups.values() if g["ops"]]
