"""Domain exceptions raised by services, and the one place that turns them into responses.

API answers (paths under /api/, /predict) are JSON `{"error": message, "status": N, "code": "..."}`: `code`
is a stable machine-readable word scripts can branch on (the message may be reworded)."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# The code of an error that carries none of its own, by HTTP status.
STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "validation_error",
    429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


def code_for(status: int) -> str:
    """The default `code` of an error answer with this HTTP status."""
    return STATUS_CODES.get(status, "client_error" if status < 500 else "server_error")


class DomainError(Exception):
    """A problem the user can fix; `status` is the HTTP status it maps to, `code` the stable API code."""

    status = 400
    code: str | None = None

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
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

    def __init__(self, message: str = "Not found.", code: str | None = None):
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


def wants_json() -> bool:
    """API routes answer JSON errors, never an HTML page."""
    path = request.path
    if path.startswith(("/api/", "/predict")) or path.endswith("/predict"):
        return True
    return request.accept_mimetypes.best == "application/json"


def error_response(message: str, status: int, code: str | None = None, extra: dict | None = None):
    """The error as JSON (API paths), an htmx fragment, or a full page."""
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
            "Your form expired or was sent without its security token. Reload the page and try again.",
            400, "csrf_failed",
        )

    @app.errorhandler(HTTPException)
    def handle_http(err: HTTPException):
        messages = {
            404: "This page does not exist, or you do not have access to it.",
            413: "The upload is too large. Send fewer or smaller files at once.",
        }
        body, status = error_response(messages.get(err.code, err.description), err.code or 500)
        return body, status, _http_headers(err)

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response("Something went wrong on our side. The error was logged.", 500)
