"""The image-classifier studio: application factory."""
from __future__ import annotations

import logging
import os
import re
import time
import uuid

from flask import Flask, g, request
from flask_babel import lazy_gettext
from werkzeug.routing import IntegerConverter

from app.config import build_config
from app.extensions import MAX_DB_INT, csrf, db, htmx, login_manager, migrate
from app.i18n import init_i18n
from app.logging_setup import init_logging
from app.rate_limits import init_rate_limits
from app.request_limits import init_request_limits, keep_form_files_in_memory
from app.storage import init_storage

BLUEPRINTS = ("auth", "datasets", "training", "predict", "api", "admin", "webhooks")
REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


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
    init_weights_dir(app)
    init_storage(app)
    init_url_converters(app)
    init_security_headers(app)
    init_request_logging(app)  # first, so requests rejected by CSRF checks are logged with an id
    init_request_limits(app)  # before the CSRF check reads any request body
    init_extensions(app)
    keep_form_files_in_memory(app)  # after htmx-flask sets its request class
    init_i18n(app)
    init_rate_limits(app)
    init_blueprints(app)
    from app.errors import init_errors
    from app.cli import init_cli
    from app.navigation import init_navigation

    init_errors(app)
    init_cli(app)
    init_navigation(app)
    return app


def init_redis_url(app: Flask) -> None:
    """No REDIS_URL: point at the embedded server's socket (it is started lazily, on first use)."""
    if not app.config["REDIS_URL"]:
        app.config["REDIS_URL"] = f"unix://{os.path.join(app.instance_path, 'redis.sock')}"
        app.config["EMBEDDED_REDIS"] = True


def init_extensions(app: Flask) -> None:
    from app.database import init_database

    db.init_app(app)
    init_database(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please log in to see that page.")
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(user_id: str):
        from app.blueprints.auth.sessions import load_session_user

        return load_session_user(user_id)

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
        given = request.headers.get("X-Request-Id", "")
        # only a short plain token is taken from outside; anything else could forge log lines
        g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:12]
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


class BoundedIntConverter(IntegerConverter):
    """<int:...> in URLs, limited to what a database integer column holds: a larger id is a 404,
    never an overflow error deep in the database driver."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_DB_INT)
        super().__init__(map, *args, **kwargs)


def init_weights_dir(app: Flask) -> None:
    """Tell the ML library where the pretrained weights files live (app.ml.networks stays torch-free)."""
    from app.ml.networks import set_weights_dir

    set_weights_dir(app.config["WEIGHTS_DIR"])


def init_url_converters(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedIntConverter


SECURITY_HEADERS = {
    # Scripts only from this site (htmx and our files; no inline script), nothing may frame a page.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: blob:; object-src 'none'; base-uri 'self'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def init_security_headers(app: Flask) -> None:
    @app.after_request
    def add_security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html":
            # An address answers htmx with a fragment and the browser with the whole page (the labeling
            # grid pushes ?q=/filter= addresses). Without this the browser's cache gives Back, after
            # another page, the fragment it keeps for that address: an unstyled grid, no header.
            response.vary.add("HX-Request")
        return response
