"""Per-route request size limits: a route marked with @allow_large_upload accepts bodies up to
MAX_UPLOAD_BYTES (uploads are streamed to temporary files by the form parser, not kept in memory); every
other route stays under MAX_CONTENT_LENGTH. The limit is set before anything reads the body (the CSRF
check reads the form), so it is a before_request hook registered ahead of the extensions.

Bodies up to FORM_FILES_IN_MEMORY_BYTES keep their files in memory (FilesInMemory)."""
from __future__ import annotations

from io import BytesIO

from flask import Flask, current_app, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from app.multipart import WholeBody, WholeBodyFormDataParser

ATTRIBUTE = "allows_large_upload"


def allow_large_upload(view):
    """Mark a view as accepting request bodies up to MAX_UPLOAD_BYTES."""
    setattr(view, ATTRIBUTE, True)
    return view


class FilesInMemory:
    """Request mixin for bodies of a known size up to FORM_FILES_IN_MEMORY_BYTES (POST /predict reads
    every file into memory right away anyway):
    - the form parser reads the body from one read of the whole of it: fed 64 KiB at a time, gunicorn
      copied what it had read ahead (up to 1 MiB) on every call, 20 ms for 32 photos (6 MB);
    - files stay in memory: werkzeug wrote each one over 500 KB to a temporary file and read it back;
    - the body is split into parts with bytes.find (app.multipart), not werkzeug's incremental parser.
    Bigger bodies, and any body sent to a dataset upload route (@allow_large_upload, which stores the
    files one by one), stream to temporary files as before."""

    form_data_parser_class = WholeBodyFormDataParser

    def _in_memory(self, length: int | None) -> bool:
        if length is None or length > current_app.config["FORM_FILES_IN_MEMORY_BYTES"]:
            return False
        return not getattr(current_app.view_functions.get(self.endpoint or ""), ATTRIBUTE, False)

    def _get_stream_for_parsing(self):
        length = self.content_length
        if getattr(self, "_cached_data", None) is not None or not length or not self._in_memory(length):
            return super()._get_stream_for_parsing()
        if self.max_content_length is not None and length > self.max_content_length:
            raise RequestEntityTooLarge()  # as werkzeug's stream does, before anything is read
        # Straight from the server's input, never past Content-Length: werkzeug's LimitedStream around it
        # would copy the body twice more (into a bytearray, then out of it)
        source, chunks, left = self.environ["wsgi.input"], [], length
        while left:  # one read with gunicorn; a server may hand over less at a time
            chunk = source.read(left)
            if not chunk:
                raise ClientDisconnected()
            chunks.append(chunk)
            left -= len(chunk)
        return WholeBody(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        if self._in_memory(total_content_length):
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
