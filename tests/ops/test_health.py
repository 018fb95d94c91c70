"""GET /healthz: database, Redis and live workers; 200 when both answer, 503 otherwise."""
from __future__ import annotations

import pytest
from rq import Worker

from app.extensions import get_queue, get_redis


def test_healthz_ok_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "database": "ok", "redis": "ok", "workers": 0, "status": "ok", "queue": client.application.config["RQ_QUEUE"],
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_counts_live_workers_of_this_queue(client):
    worker = Worker([get_queue()], connection=get_redis(), name="health-test-worker")
    worker.register_birth()
    try:
        assert client.get("/healthz").get_json()["workers"] == 1
    finally:
        worker.register_death()
    assert client.get("/healthz").get_json()["workers"] == 0


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "unix:///nonexistent/redis.sock"])
def test_healthz_503_when_redis_is_down(app, client, url):
    app.config["REDIS_URL"] = url
    app.extensions.pop("studio_redis", None)  # drop the cached client of the working Redis
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["redis"] == "error" and body["database"] == "ok" and body["status"] == "degraded"


def test_healthz_503_when_database_is_down(app, tmp_path):
    from app import create_app

    broken = create_app({
        "TESTING": True, "INSTANCE_PATH": str(tmp_path / "broken"), "SECRET_KEY": "x",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing-dir/db.sqlite3",
        "REDIS_URL": app.config["REDIS_URL"], "RQ_QUEUE": app.config["RQ_QUEUE"],
    })
    with broken.app_context():
        response = broken.test_client().get("/healthz")
        from app.extensions import db

        db.engine.dispose()
    assert response.status_code == 503
    assert response.get_json()["database"] == "error"
    assert response.get_json()["redis"] == "ok"
