"""How an API operation is declared once and then both enforced and documented.

A view is decorated with `@operation(Op(...))`: the Op names the marshmallow schemas of its query string,
JSON body or multipart form, and of its answer. The same schemas load (and so validate) every request
and serialise every answer here, and openapi.py turns the very same Op objects into the OpenAPI document:
the document cannot drift from what the server accepts.

The wrapped view is called as `view(user, data, **path_args)`: `user` is the caller (API token or an
origin-checked browser session; None only where `auth="optional"`), `data` the loaded input (query string
and body merged, absent optional fields left out). It returns an object the `out` schema dumps, a
`(object, status)` pair, or a ready Flask Response (files).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from flask import Response, jsonify, request
from marshmallow import Schema
from marshmallow import ValidationError as SchemaError
from marshmallow import fields

from app.blueprints.predict.api_auth import api_user
from app.blueprints.predict.tokens import Unauthorized
from app.errors import RequestInvalid

COMMON_ERRORS = (400, 401, 403, 404, 405, 429)
ERROR_TEXT = {
    400: "The request does not match this document (`validation_error`, with `fields`), or another "
         "problem with the request itself.",
    401: "No valid API token (`unauthorized`).",
    403: "Not allowed: your role on the dataset is too small, or a browser call from another site "
         "(`forbidden`); or over a quota of the account: storage, images, datasets, models, trainings "
         "(`quota_exceeded`).",
    404: "No such object, or not visible to you (`not_found`; `unknown_model` for models).",
    405: "This address does not take that method, or an id in it is beyond any possible id "
         "(`method_not_allowed`).",
    409: "The object's state does not allow it now (`conflict`, `not_ready`).",
    413: "Too many or too large files (`too_large`, `too_many_files`).",
    422: "Well formed, but the values do not work: e.g. options that do not go together, a name already "
         "used, a dataset without enough labeled images (`validation_error`; `fields` names the options at "
         "fault).",
    429: "Too many requests in a while (`rate_limited`); wait as `Retry-After` says.",
    503: "A background service (the job queue) is not reachable (`unavailable`).",
}


@dataclass(frozen=True)
class Op:
    """One API operation: what it takes, what it answers, who may call it, how it is documented."""

    summary: str
    tag: str
    query: type[Schema] | None = None
    body: type[Schema] | None = None       # application/json
    form: type[Schema] | None = None       # multipart/form-data
    out: type[Schema] | None = None        # the 2xx answer (application/json)
    status: int = 200
    errors: tuple[int, ...] = ()           # besides COMMON_ERRORS
    auth: str = "token"                    # "token": a caller is required; "optional": anonymous too
    description: str = ""
    files: dict = field(default_factory=dict)  # other 200 content types: {"text/csv": {...schema}}
    more: dict = field(default_factory=dict)   # other success answers: {202: (Schema, "description")}
    path: dict = field(default_factory=dict)   # schemas of non-integer path arguments: {"kind": {...}}

    @property
    def error_statuses(self) -> list[int]:
        return sorted(set(COMMON_ERRORS) | set(self.errors))


def operation(op: Op):
    """Declare a view as an API operation (see the module doc)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(**path_args):
            user = caller(op.auth)
            result = view(user, load_input(op), **path_args)
            return respond(op, result)

        wrapper.api_op = op
        return wrapper

    return decorate


def caller(auth: str):
    """The calling user; Unauthorized (401) when the operation needs one and there is none.
    (Rate limits and quotas from issue #20 hook in here, once, for every operation.)"""
    user = api_user()
    if user is None and auth != "optional":
        raise Unauthorized("Send your API token: Authorization: Bearer <token> (create one on the API page).")
    return user


def load_input(op: Op) -> dict:
    """The query string and body, loaded (validated, converted) by the operation's schemas."""
    data = {}
    if op.query is not None:
        data.update(_load(op.query, _from_multidict(op.query, request.args)))
    if op.body is not None:
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            raise RequestInvalid("Send a JSON object as the request body (Content-Type: application/json).")
        data.update(_load(op.body, body))
    if op.form is not None:
        form = _from_multidict(op.form, request.form)
        form.update(_from_multidict(op.form, request.files))
        data.update(_load(op.form, form))
    return data


@functools.cache
def instance(schema: type[Schema]) -> Schema:
    """One shared instance per schema class: building one deep-copies every field (about 0.2 ms, nine
    times per prediction), and load/dump keep no state on the instance."""
    return schema()


def _from_multidict(schema: type[Schema], values) -> dict:
    """A plain dict for schema.load: list fields (and any repeated key) get every value, others their one."""
    lists = {f.data_key or name for name, f in instance(schema).fields.items() if isinstance(f, fields.List)}
    out = {}
    for key in values.keys():
        found = values.getlist(key)
        out[key] = found if key in lists or len(found) > 1 else found[0]
    return out


def _load(schema: type[Schema], values: dict) -> dict:
    try:
        return instance(schema).load(values)
    except SchemaError as err:
        raise _invalid(schema, err) from None


def _invalid(schema: type[Schema], err: SchemaError) -> RequestInvalid:
    messages = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
    codes = {getattr(schema, "error_codes", {}).get(key) for key in messages}
    return RequestInvalid(_first_problem(messages), fields=messages, code=codes.pop() if len(codes) == 1 else None)


def _first_problem(messages: dict) -> str:
    """The first problem, after the path to its field: "options.epochs: Not a valid integer." (a problem of
    the whole body or object, marshmallow's _schema, is named by the path to that object only)."""
    path, problem = [], messages
    while isinstance(problem, (list, dict)) and problem:
        if isinstance(problem, dict):
            key, problem = next(iter(problem.items()))
            if key != "_schema":
                path.append(str(key))
        else:
            problem = problem[0]
    return f"{'.'.join(path)}: {problem}" if path else str(problem)


def respond(op: Op, result) -> Response:
    """Serialise a view's result with the operation's `out` schema (see the module doc)."""
    if isinstance(result, Response):
        return result
    status = op.status
    if isinstance(result, tuple):
        result, status = result
    schema = op.out if status == op.status else op.more[status][0]
    if schema is None:
        return Response(status=204) if result is None else (jsonify(result), status)
    return jsonify(instance(schema).dump(result)), status
