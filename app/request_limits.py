"""Per-route request size limits: a route marked with @allow_large_upload accepts bodies up to
MAX_UPLOAD_BYTES (uploads are streamed to temporary files by the form parser, not kept in memory); every
other route stays under MAX_CONTENT_LENGTH. The limit is set before anything reads the body (the CSRF
check reads the form), so it is a before_request hook registered ahead of the extensions."""
from __future__ import annotations

from flask import Flask, request

ATTRIBUTE = "allows_large_upload"


def allow_large_upload(view):
    """Mark a view as accepting request bodies up to MAX_UPLOAD_BYTES."""
    setattr(view, ATTRIBUTE, True)
    return view


def init_request_limits(app: Flask) -> None:
    @app.before_request
    def raise_limit_for_uploads():
        view = app.view_functions.get(request.endpoint or "")
        if getattr(view, ATTRIBUTE, False):
            request.max_content_length = app.config["MAX_UPLOAD_BYTES"]
