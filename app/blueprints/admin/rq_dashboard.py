"""rq-dashboard mounted at /admin/rq: admins only, the app's own Redis, same-origin POSTs.

rq-dashboard's JavaScript posts with jQuery and no CSRF token, so its blueprint is exempt from
Flask-WTF; instead every state-changing request must come from this site (Origin or Referer).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, abort, current_app, request
from flask_login import current_user

from app.blueprints.admin.services import is_admin
from app.extensions import csrf, get_redis

URL_PREFIX = "/admin/rq"
BLUEPRINT = "rq_dashboard"
# requeue_all also answers GET; treat it as state-changing.
UNSAFE_ENDPOINTS = {f"{BLUEPRINT}.requeue_all"}


def init_rq_dashboard(app: Flask) -> None:
    """Register rq-dashboard's blueprint on `app` behind the admin check."""
    import rq_dashboard

    # Its pages list this URL (password masked); setting it also avoids its legacy-config warning.
    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"])
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    # Its own hook builds a new Redis client (a new pool) on every request and cannot start the
    # embedded Redis; _guard hands it the app's client instead.
    hooks = app.before_request_funcs.get(BLUEPRINT, [])
    app.before_request_funcs[BLUEPRINT] = [f for f in hooks if f is not rq_dashboard.web.push_rq_connection]
    csrf.exempt(rq_dashboard.blueprint)
    app.before_request(_guard)
    # Its pages run inline scripts and underscore templates (which compile with Function()): they get
    # a policy of their own, still with no framing and nothing from other sites. Admins only.
    app.after_request_funcs.setdefault(BLUEPRINT, []).append(_dashboard_policy)


DASHBOARD_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
                 "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
                 "frame-ancestors 'none'")


def _dashboard_policy(response):
    response.headers["Content-Security-Policy"] = DASHBOARD_CSP
    return response


def _guard():
    """404 for non-admins; reject cross-site writes; hand rq-dashboard the app's Redis client."""
    if request.blueprint != BLUEPRINT:
        return None
    if not is_admin(current_user):
        abort(404)
    if request.method not in ("GET", "HEAD", "OPTIONS") or request.endpoint in UNSAFE_ENDPOINTS:
        if not same_origin():
            abort(403, "This dashboard action must be started from the dashboard page itself.")
    # rq-dashboard reads `current_app.redis_conn`; threads share the app, and it is the same client.
    current_app.redis_conn = get_redis()
    return None


def same_origin() -> bool:
    """True when Origin (or, without it, Referer) names this host."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return False
    return urlsplit(source).netloc == request.host
