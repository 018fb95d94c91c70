"""app.multipart: the whole-body parser gives werkzeug's answer on every body it takes, leaves every
other body to werkzeug, and keeps werkzeug's limits."""
import random
from io import BytesIO

import pytest
from urllib3 import encode_multipart_formdata
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import MultiPartParser
from werkzeug.http import parse_options_header
from werkzeug.test import EnvironBuilder

from app.multipart import parse_whole_body

BOUNDARY = "b0undary7e3f"


def werkzeug_parse(body: bytes, boundary: str, **limits):
    parser = MultiPartParser(stream_factory=lambda **_: BytesIO(), **limits)
    return parser.parse(BytesIO(body), boundary.encode(), len(body))


def summary(parsed):
    form, files = parsed
    return (list(form.items(multi=True)),
            [(key, f.filename, f.name, f.read(), list(f.headers.items())) for key, f in files.items(multi=True)])


def fields_and_files():
    return [("model", "7"), ("note", "café ☕"), ("empty", ""),
            ("file", ("a.jpg", b"\xff\xd8 jpeg \r\n-- not a boundary --\r\n\r\n", "image/jpeg")),
            ("file", ("ünïcode name.png", b"", "image/png")),
            ("file", ("lines.txt", b"\r\n" * 3 + b"--" + BOUNDARY.encode()[:-1] + b"\r\n", "text/plain")),
            ("file", ("big.bin", bytes(range(256)) * 4000, "application/octet-stream"))]


def urllib3_body(parts=None):
    body, _ = encode_multipart_formdata(parts or fields_and_files(), boundary=BOUNDARY)
    return body


def client_body():
    """werkzeug's test client (used by the whole suite) starts its body with a CRLF."""
    builder = EnvironBuilder(method="POST", data={"model": "7", "file": (BytesIO(b"\x00\r\n--x"), "a.jpg")})
    environ = builder.get_environ()
    boundary = parse_options_header(environ["CONTENT_TYPE"])[1]["boundary"]
    return environ["wsgi.input"].read(), boundary


@pytest.mark.parametrize("make", [urllib3_body, client_body], ids=["urllib3", "werkzeug-test-client"])
def test_canonical_bodies_parse_as_werkzeug_parses_them(make):
    made = make()
    body, boundary = made if isinstance(made, tuple) else (made, BOUNDARY)
    ours = parse_whole_body(body, boundary.encode())
    assert ours is not None
    assert summary(ours) == summary(werkzeug_parse(body, boundary))


def test_a_declared_charset_and_an_encoded_filename_are_read_as_werkzeug_reads_them():
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"t\"\r\n"
            f"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n").encode() + "é".encode("latin-1") + (
            f"\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%C3%A9t%C3%A9.jpg"
            f"\r\n\r\nxyz\r\n--{BOUNDARY}--\r\n").encode()
    ours = parse_whole_body(body, BOUNDARY.encode())
    assert summary(ours) == summary(werkzeug_parse(body, BOUNDARY))
    assert ours[0]["t"] == "é" and ours[1]["file"].filename == "été.jpg"


@pytest.mark.parametrize("change", [
    lambda b: b.replace(b"\r\n", b"\n"),                                     # LF line breaks
    lambda b: b"a preamble\r\n" + b,                                         # a preamble
    lambda b: b.replace(f"--{BOUNDARY}\r\n".encode(), f"--{BOUNDARY}  \r\n".encode(), 1),  # space after
    lambda b: b.replace(b'name="note"', b'name="note";\r\n\tfilename="x"', 1),  # a folded header line
    lambda b: b.replace(b"jpeg", b"jpeg\n--" + BOUNDARY.encode() + b"\r\n", 1),  # a delimiter after a lone LF
    lambda b: b.replace(b"Content-Disposition", b"Content-Dis\xffposition", 1),  # not UTF-8
    lambda b: b[:-40],                                                       # cut short
], ids=["lf", "preamble", "space-after-boundary", "folded-header", "lone-lf-delimiter", "not-utf8", "truncated"])
def test_other_layouts_are_left_to_werkzeug(change):
    assert parse_whole_body(change(urllib3_body()), BOUNDARY.encode()) is None


def test_werkzeug_limits_hold():
    body = urllib3_body()
    with pytest.raises(RequestEntityTooLarge):
        parse_whole_body(body, BOUNDARY.encode(), max_form_parts=6)
    with pytest.raises(RequestEntityTooLarge):
        werkzeug_parse(body, BOUNDARY, max_form_parts=6)
    assert parse_whole_body(body, BOUNDARY.encode(), max_form_parts=7) is not None
    long_field = urllib3_body([("text", "x" * 2000)])
    with pytest.raises(RequestEntityTooLarge):
        parse_whole_body(long_field, BOUNDARY.encode(), max_form_memory_size=1000)
    with pytest.raises(RequestEntityTooLarge):
        werkzeug_parse(long_field, BOUNDARY, max_form_memory_size=1000)


def parsed_or_refused(parse, body: bytes):
    try:
        return parse(body)
    except RequestEntityTooLarge:
        return "413"


def test_mutated_bodies_are_parsed_as_werkzeug_parses_them_or_left_to_it():
    """Bytes changed, inserted or removed around the structure: whatever the whole-body parser takes,
    it reads (or refuses, at three parts at most) exactly as werkzeug does."""
    rng = random.Random(7)
    small = urllib3_body([("a", "1"), ("file", ("x.jpg", b"\xff\xd8\r\n--data", "image/jpeg")), ("b", "two")])
    alphabet = [b"\r", b"\n", b"\r\n", b"-", b"--", b" ", b"\t", b'"', b";", b":", b"\xff", b"\r\n\r\n",
                BOUNDARY.encode(), b"--" + BOUNDARY.encode(), b"filename=", b"x"]
    taken = 0
    for _ in range(3000):
        body = bytearray(small)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(body) + 1)
            if rng.random() < 0.3:
                del body[at:at + rng.randint(1, 4)]
            else:
                body[at:at + rng.randint(0, 2)] = rng.choice(alphabet)
        body = bytes(body)
        ours = parsed_or_refused(lambda b: parse_whole_body(b, BOUNDARY.encode(), max_form_parts=3), body)
        if ours is None:
            continue
        taken += 1
        theirs = parsed_or_refused(lambda b: werkzeug_parse(b, BOUNDARY, max_form_parts=3), body)
        assert (ours if ours == "413" else summary(ours)) == (theirs if theirs == "413" else summary(theirs)), body
    assert 300 < taken < 3000  # both kinds were exercised
