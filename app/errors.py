"""Domain exceptions raised by services, and the one place that turns them into responses.

API answers (paths under /api/, /predict) are JSON `{"error": message, "status": N, "code": "..."}`: `code`
is a stable machine-readable word scripts can branch on (the message may be reworded)."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# The code of an error that carries none of its own, by HTTP status.
STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "validation_error",
    429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


# Every `code` an error answer can carry, and what it means. The OpenAPI document lists these (the Error
# schema's enum); tests/test_i18n.py checks that every code the code raises is here.
ERROR_CODES = {
    "bad_request": "The request itself is wrong (400), e.g. a malformed body.",
    "validation_error": "The request does not match the document (400, with `fields`), or its values do "
                        "not work (422).",
    "csrf_failed": "A browser request without its security token (pages only).",
    "unauthorized": "No valid API token or session (401).",
    "forbidden": "Not allowed: too small a role on the dataset, or a cross-site browser call (403).",
    "not_found": "No such object, or not visible to you (404).",
    "unknown_model": "No such model, or not visible to you (404).",
    "method_not_allowed": "This address does not take that method (405).",
    "conflict": "The object's state does not allow it now (409).",
    "not_ready": "The model has not finished training, or its files are missing (409).",
    "no_file": "No file was sent in the upload field (400).",
    "bad_image": "The uploaded file is not a usable image (422, where one image is the whole request).",
    "no_model": "No model was named and the account has no default model (422).",
    "too_large": "The request body is too large (413).",
    "too_many_files": "More files than one request may carry (413).",
    "unsupported_media_type": "The body is not in a format this address takes (415).",
    "quota_exceeded": "Your quota (storage, images, datasets, models, active trainings) does not allow it (403).",
    "login_locked": "Too many failed logins for the account; wait and try again (429).",
    "rate_limited": "Too many requests; `retry_after` says how many seconds to wait (429).",
    "unknown_language": "A language the studio does not speak (pages only).",
    "internal_error": "A bug on the server's side; it was logged (500).",
    "unavailable": "A background service (the job queue) is not reachable (503).",
    "client_error": "Another problem with the request (4xx).",
    "server_error": "Another problem on the server (5xx).",
}
# The `code` of one file's entry in a /predict answer (the request itself succeeded).
FILE_ERROR_CODES = {
    "bad_image": "The file is not a usable image.",
    "over_pixel_budget": "The request's images hold more pixels than one request may decode.",
}


def code_for(status: int) -> str:
    """The default `code` of an error answer with this HTTP status."""
    return STATUS_CODES.get(status, "client_error" if status < 500 else "server_error")


class DomainError(Exception):
    """A problem the user can fix; `status` is the HTTP status it maps to, `code` the stable API code."""

    status = 400
    code: str | None = None

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        # A lazy_gettext message becomes text now, in the request's language (always English on the API,
        # app/i18n.py), so it can be logged, stored or sent as JSON like any string.
        message = str(message)
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    @property
    def error_code(self) -> str:
        return self.code or code_for(self.status)


class NotFound(DomainError):
    status = 404
    code = "not_found"

    def __init__(self, message: str = _l("Not found."), code: str | None = None):
        super().__init__(message, code=code)


class ValidationError(DomainError):
    status = 422
    code = "validation_error"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class RequestInvalid(DomainError):
    """The request does not match the operation's documented schema (API): which fields, and why."""

    status = 400
    code = "validation_error"

    def __init__(self, message: str, fields: dict | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.fields = fields or {}


class QuotaExceeded(DomainError):
    """The user's quota (storage, images, datasets, models, active trainings) does not allow this."""

    status = 403
    code = "quota_exceeded"


def is_api_path(path: str) -> bool:
    """The JSON API: /api/..., POST /predict, /models/<id>/predict and /models/<id>/explain (English, stable
    codes)."""
    return path.startswith("/api/") or path.startswith("/predict") or path.endswith(("/predict", "/explain"))


def wants_json() -> bool:
    """API routes answer JSON errors, never an HTML page."""
    if is_api_path(request.path):
        return True
    return request.accept_mimetypes.best == "application/json"


def error_response(message: str, status: int, code: str | None = None, extra: dict | None = None):
    """The error as JSON (API paths, where app/i18n.py keeps every message English), an htmx fragment,
    or a full page in the user's language. `message` may be a lazy string (flask_babel.lazy_gettext)."""
    message = str(message)
    if wants_json():
        return jsonify({"error": message, "status": status, "code": code or code_for(status), **(extra or {})}), status
    if getattr(request, "htmx", False):
        return render_template("_error_fragment.html", message=message, status=status), status
    return render_template("error.html", message=message, status=status), status


def _http_headers(err: HTTPException) -> dict:
    """Headers an HTTP error must keep (Allow on a 405, Retry-After on a 429...), not its content type."""
    return {name: value for name, value in err.get_headers() if name.lower() != "content-type"}


def init_errors(app: Flask) -> None:
    from flask_limiter import RateLimitExceeded

    from app.rate_limits import rate_limited_response

    @app.errorhandler(RateLimitExceeded)
    def handle_rate_limited(err: RateLimitExceeded):
        return rate_limited_response(err)

    @app.errorhandler(DomainError)
    def handle_domain(err: DomainError):
        extra = {"fields": err.fields} if isinstance(err, RequestInvalid) and err.fields else None
        body, status = error_response(err.message, err.status, err.error_code, extra)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 and wants_json() else {}
        return body, status, headers

    @app.errorhandler(CSRFError)
    def handle_csrf(err: CSRFError):
        return error_response(
            _l("Your form expired or was sent without its security token. Reload the page and try again."),
            400, "csrf_failed",
        )

    @app.errorhandler(HTTPException)
    def handle_http(err: HTTPException):
        messages = {
            404: _l("This page does not exist, or you do not have access to it."),
            413: _l("The upload is too large. Send fewer or smaller files at once."),
        }
        if not wants_json():  # pages: plain words in the user's language, not Werkzeug's English
            messages.update({400: _l("The request could not be understood. Reload the page and try again."),
                             403: _l("You are not allowed to do that."),
                             405: _l("This address does not take that kind of request.")})
        body, status = error_response(messages.get(err.code, err.description), err.code or 500)
        return body, status, _http_headers(err)

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(_l("Something went wrong on our side. The error was logged."), 500)
