"""POST /admin/shutdown and `flask shutdown`: admin only, CSRF, opt-in, graceful, jobs kept."""
from __future__ import annotations

import subprocess

import pytest
import requests

from app.extensions import get_queue
from tests.ops.conftest import free_port, page_csrf_token, start_gunicorn, wait_until
from tests.ops.jobs import record_run


@pytest.fixture
def no_signals(monkeypatch):
    """Record shutdown requests instead of signalling (this test process must survive a regression)."""
    calls = []
    monkeypatch.setattr("app.blueprints.admin.views.request_shutdown", lambda environ: calls.append(environ) or 0)
    return calls


def test_shutdown_refused_when_disabled(app, admin_client, no_signals):
    app.config["ALLOW_REMOTE_SHUTDOWN"] = False
    response = admin_client.post("/admin/shutdown")
    assert response.status_code == 403
    assert b"ALLOW_REMOTE_SHUTDOWN=1" in response.data
    assert no_signals == []


def test_shutdown_refused_without_csrf_token(app, admin_client, no_signals):
    app.config["ALLOW_REMOTE_SHUTDOWN"] = True
    assert admin_client.post("/admin/shutdown", csrf=False).status_code == 400
    assert no_signals == []
    assert admin_client.post("/admin/shutdown").status_code == 202
    assert len(no_signals) == 1


def test_shutdown_refused_for_non_admins(app, logged_in, no_signals):
    app.config["ALLOW_REMOTE_SHUTDOWN"] = True
    assert logged_in.post("/admin/shutdown").status_code == 404
    assert no_signals == []


def _login_session(base: str, username: str) -> requests.Session:
    session = requests.Session()
    token = page_csrf_token(session.get(f"{base}/login", timeout=10).text)
    response = session.post(f"{base}/login", data={"csrf_token": token, "username": username,
                                                   "password": "correct horse"}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return session


def _serve(app, tmp_path, **env):
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    proc = start_gunicorn(app, port, log_path, **env)
    base = f"http://127.0.0.1:{port}"

    def ready():
        assert proc.poll() is None, log_path.read_text()
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.RequestException:  # not listening yet, or workers still booting
            return False

    try:
        wait_until(ready, timeout=90)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, base, log_path


@pytest.mark.slow
def test_admin_shuts_down_a_real_gunicorn_gracefully(app, make_user, tmp_path):
    make_user("root", is_admin=True)
    job = get_queue().enqueue(record_run, "kept", job_timeout=30, result_ttl=60)
    proc, base, log_path = _serve(app, tmp_path, ALLOW_REMOTE_SHUTDOWN=1, SERVER_PID_FILE=tmp_path / "gunicorn.pid")
    try:
        session = _login_session(base, "root")
        token = page_csrf_token(session.get(f"{base}/admin/", timeout=10).text)
        assert session.post(f"{base}/admin/shutdown", timeout=10).status_code == 400  # no token
        response = session.post(f"{base}/admin/shutdown", data={"csrf_token": token}, timeout=10)
        assert response.status_code == 202 and "server is stopping" in response.text
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = log_path.read_text()
    assert "Handling signal: term" in log and "Shutting down: Master" in log
    assert "request id=" in log and "POST /admin/shutdown -> 202" in log  # app request lines reach stderr
    assert app.config["SECRET_KEY"] not in log and "correct horse" not in log
    assert job.id in get_queue().job_ids  # queued work stays in Redis
    assert not (tmp_path / "gunicorn.pid").exists()


@pytest.mark.slow
def test_flask_shutdown_command_stops_gunicorn(app, tmp_path):
    pid_file = tmp_path / "server.pid"
    proc, base, _ = _serve(app, tmp_path, SERVER_PID_FILE=pid_file)
    try:
        assert pid_file.read_text().strip() == str(proc.pid)
        runner = app.test_cli_runner()
        app.config["SERVER_PID_FILE"] = str(pid_file)
        result = runner.invoke(args=["shutdown", "--wait", "20"])
        assert result.exit_code == 0, result.output
        assert "The server has stopped" in result.output
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    result = app.test_cli_runner().invoke(args=["shutdown", "--pidfile", str(pid_file)])
    assert result.exit_code == 1 and "No pid file" in result.output
