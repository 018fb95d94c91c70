"""Uploaded files of a bounded request body stay in memory; bigger bodies stream to temporary files."""
from __future__ import annotations

import io

from app.request_limits import FilesInMemory
from tests.conftest import CountedReads


def _kept_in_memory(app, size: int, reads: int | None = None, path: str = "/predict") -> bool:
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    # encoded here, in memory: the test builder would spool a big body to a file it never closes
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(b"x" * size), "photo.jpg")})
    counted = CountedReads(body)
    with app.test_request_context(path, method="POST", input_stream=counted,
                                  headers={"Content-Length": str(len(body))},
                                  content_type=f"multipart/form-data; boundary={boundary}"):
        from flask import request

        assert isinstance(request._get_current_object(), FilesInMemory)
        assert request.htmx is not None  # htmx-flask's request class is kept
        upload = request.files["file"]
        assert upload.read() == b"x" * size
        in_memory = isinstance(upload.stream, io.BytesIO)
        upload.close()
        if reads is not None:
            assert counted.reads == reads
        return in_memory


def test_a_phone_photo_is_not_written_to_disk(app):
    assert _kept_in_memory(app, 3 * 1024 * 1024, reads=1)  # the whole body in one read


def test_dataset_uploads_still_stream_to_temporary_files(app):
    assert not _kept_in_memory(app, 3 * 1024 * 1024, path="/datasets/1/upload")


def test_a_body_over_the_memory_limit_goes_to_a_temporary_file(app):
    app.config["FORM_FILES_IN_MEMORY_BYTES"] = 1024 * 1024
    assert not _kept_in_memory(app, 2 * 1024 * 1024)


def test_a_short_body_is_a_client_error_and_an_oversized_one_a_413(app, client):
    """The body is read in one piece: a client that sends less than it announced, or more than the route
    takes, gets the same answers as with werkzeug's streaming parser."""
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(b"x" * 5000), "photo.jpg")})
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    short = client.post("/predict", input_stream=io.BytesIO(body[:3000]),
                        headers={**headers, "Content-Length": str(len(body))})
    assert short.status_code == 400
    app.config["MAX_CONTENT_LENGTH"] = 1000
    assert client.post("/predict", data=body, headers=headers).status_code == 413


def test_a_body_in_memory_is_split_by_the_whole_body_parser_and_an_odd_one_by_werkzeug(app, monkeypatch):
    """Both give the view the same files; werkzeug's parser only sees the body laid out unusually."""
    from werkzeug.formparser import MultiPartParser
    from werkzeug.test import encode_multipart
    from werkzeug.datastructures import FileStorage

    werkzeug_parses = []
    parse = MultiPartParser.parse
    monkeypatch.setattr(MultiPartParser, "parse", lambda self, *a: werkzeug_parses.append(1) or parse(self, *a))
    boundary, body = encode_multipart({"model": "3", "file": FileStorage(io.BytesIO(b"\xff\xd8\r\n" * 9), "a.jpg")})
    for sent in (body, body.replace(b"\r\n--" + boundary.encode(), b"\n--" + boundary.encode())):
        with app.test_request_context("/predict", method="POST", data=sent,
                                      content_type=f"multipart/form-data; boundary={boundary}"):
            from flask import request

            assert request.form["model"] == "3"
            assert request.files["file"].filename == "a.jpg" and request.files["file"].read().startswith(b"\xff\xd8")
    assert werkzeug_parses == [1]  # the second body only
