"""The image-classifier studio: application factory."""
from __future__ import annotations

import logging
import os
import time
import uuid

from flask import Flask, g, request

from app.config import build_config
from app.extensions import csrf, db, htmx, login_manager, migrate
from app.logging_setup import init_logging

BLUEPRINTS = ("auth", "datasets", "training", "predict", "admin")


def create_app(test_config: dict | None = None) -> Flask:
    """Build the Flask app: config, extensions, blueprints. No network work happens here."""
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None)
    if test_config and test_config.get("INSTANCE_PATH"):
        app.instance_path = test_config["INSTANCE_PATH"]
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(build_config(app.instance_path))
    if test_config:
        app.config.update(test_config)
    init_logging(app)
    app.extensions["studio_pid"] = os.getpid()  # lets forked job processes know they were forked
    init_redis_url(app)
    init_request_logging(app)  # first, so requests rejected by CSRF checks are logged with an id
    init_extensions(app)
    init_blueprints(app)
    from app.errors import init_errors
    from app.cli import init_cli

    init_errors(app)
    init_cli(app)
    return app


def init_redis_url(app: Flask) -> None:
    """No REDIS_URL: point at the embedded server's socket (it is started lazily, on first use)."""
    if not app.config["REDIS_URL"]:
        app.config["REDIS_URL"] = f"unix://{os.path.join(app.instance_path, 'redis.sock')}"
        app.config["EMBEDDED_REDIS"] = True


def init_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.login_message_category = "info"

    from app import models

    @login_manager.user_loader
    def load_user(user_id: str):
        return db.session.get(models.User, int(user_id))

    @login_manager.unauthorized_handler
    def unauthorized():
        from app.blueprints.auth.services import unauthorized_response

        return unauthorized_response()


def init_blueprints(app: Flask) -> None:
    import importlib

    for name in BLUEPRINTS:
        module = importlib.import_module(f"app.blueprints.{name}")
        module.init_app(app)


def init_request_logging(app: Flask) -> None:
    """One log line per request, with a request id (also returned as X-Request-Id)."""
    logger = logging.getLogger("app.request")

    @app.before_request
    def start_timer():
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:12]
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response):
        if request.endpoint != "static":
            elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
            logger.info(
                "request id=%s %s %s -> %s %.1fms", g.get("request_id"), request.method,
                request.path, response.status_code, elapsed,
            )
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response
