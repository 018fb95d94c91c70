"""Domain exceptions raised by services, and the one place that turns them into responses."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


# The stable "code" of a JSON error for each status, unless the error names its own.
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "too_large", 422: "invalid", 429: "rate_limited", 500: "server_error",
         503: "unavailable"}


def code_for(status: int) -> str:
    return CODES.get(status, "error")


class DomainError(Exception):
    """A problem the user can fix; `status` is the HTTP status it maps to, `code` the stable name API
    clients can branch on (by default the status's, see CODES)."""

    status = 400
    code: str | None = None

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotFound(DomainError):
    status = 404

    def __init__(self, message: str = "Not found."):
        super().__init__(message)


class ValidationError(DomainError):
    status = 422


class Conflict(DomainError):
    status = 409


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


def error_response(message: str, status: int, code: str | None = None):
    """The error as JSON (API paths), an htmx fragment, or a full page."""
    if wants_json():
        return jsonify({"error": message, "status": status, "code": code or code_for(status)}), status
    if getattr(request, "htmx", False):
        return render_template("_error_fragment.html", message=message, status=status), status
    return render_template("error.html", message=message, status=status), status



def init_errors(app: Flask) -> None:
    from flask_limiter import RateLimitExceeded

    from app.rate_limits import rate_limited_response

    @app.errorhandler(DomainError)
    def handle_domain(err: DomainError):
        return error_response(err.message, err.status, err.code)

    @app.errorhandler(RateLimitExceeded)
    def handle_rate_limited(err: RateLimitExceeded):
        return rate_limited_response(err)

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
        return error_response(messages.get(err.code, err.description), err.code or 500)

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response("Something went wrong on our side. The error was logged.", 500)
