"""Per-route request size limits: a route marked with @allow_large_upload accepts bodies up to
MAX_UPLOAD_BYTES (uploads are streamed to temporary files by the form parser, not kept in memory); every
other route stays under MAX_CONTENT_LENGTH. The limit is set before anything reads the body (the CSRF
check reads the form), so it is a before_request hook registered ahead of the extensions.

Bodies up to FORM_FILES_IN_MEMORY_BYTES keep their files in memory (FilesInMemory)."""
from __future__ import annotations

from io import BytesIO

from flask import Flask, current_app, request

ATTRIBUTE = "allows_large_upload"


def allow_large_upload(view):
    """Mark a view as accepting request bodies up to MAX_UPLOAD_BYTES."""
    setattr(view, ATTRIBUTE, True)
    return view


class FilesInMemory:
    """Request mixin. Werkzeug writes every uploaded file over 500 KB to a temporary file. POST /predict
    reads each file into memory right away, so for a body of a bounded size that is a write and a read
    of disk per photo for nothing; bigger bodies (dataset uploads) still stream to temporary files."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        if total_content_length is not None and total_content_length <= current_app.config["FORM_FILES_IN_MEMORY_BYTES"]:
            return BytesIO()
        return super()._get_file_stream(total_content_length, content_type, filename, content_length)


def keep_form_files_in_memory(app: Flask) -> None:
    """Mix FilesInMemory into the app's request class (after extensions that replace it, e.g. htmx)."""
    if not issubclass(app.request_class, FilesInMemory):
        app.request_class = type("StudioRequest", (FilesInMemory, app.request_class), {})


def init_request_limits(app: Flask) -> None:
    @app.before_request
    def raise_limit_for_uploads():
        view = app.view_functions.get(request.endpoint or "")
        if getattr(view, ATTRIBUTE, False):
            request.max_content_length = app.config["MAX_UPLOAD_BYTES"]
