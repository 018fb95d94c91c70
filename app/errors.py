"""Domain exceptions raised by services, and the one place that turns them into responses."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A problem the user can fix; `status` is the HTTP status it maps to."""

    status = 400

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


def wants_json() -> bool:
    """API routes answer JSON errors, never an HTML page."""
    path = request.path
    if path.startswith(("/api/", "/predict")) or path.endswith("/predict"):
        return True
    return request.accept_mimetypes.best == "application/json"


def _error_response(message: str, status: int):
    if wants_json():
        return jsonify({"error": message, "status": status}), status
    if getattr(request, "htmx", False):
        return render_template("_error_fragment.html", message=message, status=status), status
    return render_template("error.html", message=message, status=status), status


def init_errors(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def handle_domain(err: DomainError):
        return _error_response(err.message, err.status)

    @app.errorhandler(CSRFError)
    def handle_csrf(err: CSRFError):
        return _error_response(
            "Your form expired or was sent without its security token. Reload the page and try again.",
            400,
        )

    @app.errorhandler(HTTPException)
    def handle_http(err: HTTPException):
        messages = {
            404: "This page does not exist, or you do not have access to it.",
            413: "The upload is too large. Send fewer or smaller files at once.",
        }
        return _error_response(messages.get(err.code, err.description), err.code or 500)

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error_response("Something went wrong on our side. The error was logged.", 500)
