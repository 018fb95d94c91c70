"""Log lines: one per request with its id, job events with ids, secrets never written."""
from __future__ import annotations

import logging

from app.logging_setup import RedactingFormatter, log_job_event, redact


def test_request_line_has_the_request_id(client, caplog):
    caplog.set_level(logging.INFO, logger="app.request")
    response = client.get("/healthz", headers={"X-Request-Id": "abc123"})
    assert response.headers["X-Request-Id"] == "abc123"
    assert any("request id=abc123 GET /healthz -> 200" in r.getMessage() for r in caplog.records)


def test_job_event_line_has_ids_and_hides_secret_fields(caplog):
    caplog.set_level(logging.INFO, logger="app.jobs")
    log_job_event(7, "running", job_id="train-7-ab", worker="w1", api_token="tok-123")
    line = caplog.records[-1].getMessage()
    assert line == "job run=7 state=running job=train-7-ab api_token=*** worker=w1"


def test_redaction_of_urls_passwords_and_the_secret_key(app):
    text = redact("db postgresql://studio:hunter2@db:5432/studio password=hunter2 'token': 'abc'")
    assert "hunter2" not in text and "abc" not in text
    assert "postgresql://studio:***@db:5432/studio" in text
    record = logging.LogRecord("app", logging.ERROR, __file__, 1, "key is %s", (app.config["SECRET_KEY"],), None)
    assert app.config["SECRET_KEY"] not in RedactingFormatter("%(message)s").format(record)


def test_unexpected_errors_are_logged_with_traceback(app, client, caplog):
    @app.get("/ops-test-boom")
    def boom():
        raise RuntimeError("kaboom")

    response = client.get("/ops-test-boom")
    assert response.status_code == 500
    error = [r for r in caplog.records if r.levelno == logging.ERROR][-1]
    assert error.exc_info and "kaboom" in str(error.exc_info[1])
