"""Uploaded files of a bounded request body stay in memory; bigger bodies stream to temporary files."""
from __future__ import annotations

import io

from app.request_limits import FilesInMemory


def _kept_in_memory(app, size: int) -> bool:
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    # encoded here, in memory: the test builder would spool a big body to a file it never closes
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(b"x" * size), "photo.jpg")})
    with app.test_request_context("/predict", method="POST", data=body,
                                  content_type=f"multipart/form-data; boundary={boundary}"):
        from flask import request

        assert isinstance(request._get_current_object(), FilesInMemory)
        assert request.htmx is not None  # htmx-flask's request class is kept
        upload = request.files["file"]
        assert upload.read() == b"x" * size
        in_memory = isinstance(upload.stream, io.BytesIO)
        upload.close()
        return in_memory


def test_a_phone_photo_is_not_written_to_disk(app):
    assert _kept_in_memory(app, 3 * 1024 * 1024)


def test_a_body_over_the_memory_limit_goes_to_a_temporary_file(app):
    app.config["FORM_FILES_IN_MEMORY_BYTES"] = 1024 * 1024
    assert not _kept_in_memory(app, 2 * 1024 * 1024)
