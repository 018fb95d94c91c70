"""Numbers inside stored lines (a job's or the ML library's words) are written the reader's way: sizes with
their unit, small numbers in scientific notation and plain decimals all take the locale's decimal sign."""
from __future__ import annotations

from flask_babel import force_locale

from app.i18n import stored_text
from app.ml.words import line

TEMPLATE = "%(size_bytes)s, %(tiny_sci)s, %(rate)s, %(count)s"


def test_values_in_lines_follow_the_readers_number_format(app):
    said = line(TEMPLATE, size_bytes=22_130_000, tiny_sci=0.0000234, rate=0.5, count=12_000)
    assert said["message"] == "21.1 MB, 2.34e-05, 0.5, 12,000"
    with app.test_request_context():
        with force_locale("pt_BR"):
            assert stored_text(said) == "21,1 MB, 2,34e-05, 0,5, 12.000"
        with force_locale("en"):
            assert stored_text(said) == said["message"]
        with force_locale("es"):
            assert stored_text(line("%(size_bytes)s", size_bytes=5 * 1024)) == "5,0 KB"
            assert stored_text(line("%(size_bytes)s", size_bytes=500)) == "500 B"
