"""Rate limits: Flask-Limiter on the app's Redis, as decorators any blueprint (pages or JSON API) can put
on a view.

    @bp.route("/login", methods=["GET", "POST"])
    @limit_by_ip("RATELIMIT_LOGIN", methods=["POST"])
    def login(): ...

Every limit is a setting (app/config.py, from the environment) read at request time, so tests and
deployments change it without touching code; RATELIMIT_ENABLED=0 switches them all off. A request over a
limit gets 429 with Retry-After: JSON `{"error", "status": 429, "code": "rate_limited", "retry_after"}`
on API paths, a short page for browsers, a fragment for htmx.

Who a client is: its IP address (request.remote_addr, which only a configured number of trusted reverse
proxies may rewrite: TRUSTED_PROXIES, through Werkzeug's ProxyFix), or its account (API token or
session) where the caller is known.
"""
from __future__ import annotations

import math
import time
from functools import wraps
from typing import Callable

from flask import Flask, current_app, jsonify, request
from flask_limiter import RateLimitExceeded
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from app.i18n import ngettext
from app.extensions import db, get_redis, limiter

KeyFunc = Callable[[], str]


# --- who is calling ------------------------------------------------------------------------------

def client_ip() -> str:
    """The client's address: the connection's, or what the trusted proxies reported (never a header an
    untrusted client chose: ProxyFix only reads as many X-Forwarded-For entries as TRUSTED_PROXIES)."""
    return f"ip:{request.remote_addr or 'unknown'}"


def signed_in_user() -> str:
    """The signed-in account (views behind login_required), else the client IP."""
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return client_ip()


def api_caller() -> str:
    """The account behind a valid API token or browser session, else the client IP (anonymous calls and
    unknown tokens share the IP's budget, so guessing tokens is limited too). Cached per request."""
    cached = request.environ.get("studio.rate_limit_caller")
    if cached is None:
        cached = request.environ["studio.rate_limit_caller"] = _api_caller()
    return cached


def _api_caller() -> str:
    from sqlalchemy import select

    from app.blueprints.predict.tokens import bearer_from_header, hash_token
    from app.models import ApiToken

    token = bearer_from_header(request.headers.get("Authorization"))
    if token:
        user_id = db.session.scalar(select(ApiToken.user_id).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)))
        return f"user:{user_id}" if user_id is not None else client_ip()
    if token is None and current_user.is_authenticated:
        return f"user:{current_user.id}"
    return client_ip()


def is_anonymous_caller() -> bool:
    return not api_caller().startswith("user:")


# --- what a request costs ------------------------------------------------------------------------

def uploaded_files(*fields: str, most: str | None = None) -> Callable[[], int]:
    """A cost function: the number of files in the request's `fields` (at least 1, at most the setting
    `most` when given, so a request refused for having too many files gets that clearer answer)."""
    def cost() -> int:
        count = sum(1 for name in fields for f in request.files.getlist(name) if f.filename or f.content_length)
        if most:
            count = min(count, current_app.config[most] + 1)
        return max(1, count)

    return cost


# --- the decorators ------------------------------------------------------------------------------

def rate_limit(setting: str, key: KeyFunc = client_ip, cost: int | Callable[[], int] = 1,
               methods: list[str] | None = None, scope: str | None = None,
               exempt_when: Callable[[], bool] | None = None):
    """Limit a view by the limit string in config[setting] (empty: no limit), counted per `key` with
    `cost` per request. `scope` shares one budget between several views (e.g. /predict and
    /models/<id>/predict, or the same action in pages and the JSON API)."""
    value = lambda: current_app.config.get(setting) or ""  # noqa: E731  (read per request)
    if scope:
        route_limit = limiter.shared_limit(value, scope=scope, key_func=key, cost=cost, methods=methods,
                                           exempt_when=exempt_when)
    else:
        route_limit = limiter.limit(value, key_func=key, cost=cost, methods=methods, exempt_when=exempt_when)

    def decorator(view):
        limited = route_limit(view)

        @wraps(limited)  # keeps Flask-Limiter's mark, so stacked limits are checked once, not twice
        def wrapped(*args, **kwargs):
            _ensure_storage()
            return limited(*args, **kwargs)

        return wrapped

    return decorator


def limit_by_ip(setting: str, methods: list[str] | None = None, scope: str | None = None):
    """Per client IP (login, register, token creation)."""
    return rate_limit(setting, client_ip, methods=methods, scope=scope)


def limit_by_user(setting: str, cost: int | Callable[[], int] = 1, methods: list[str] | None = None,
                  scope: str | None = None):
    """Per signed-in account (put it under login_required)."""
    return rate_limit(setting, signed_in_user, cost=cost, methods=methods, scope=scope)


def limit_predictions(scope: str = "predict", per_file: int = 1):
    """Images per minute for the prediction API: RATELIMIT_PREDICT per account (token or session),
    RATELIMIT_PREDICT_ANONYMOUS per IP for anonymous calls. Each file of the request counts, `per_file`
    images each (a call that does several images' work per file)."""
    files = uploaded_files("file", "files", most="PREDICT_MAX_FILES")
    cost = files if per_file == 1 else (lambda: per_file * files())
    by_account = rate_limit("RATELIMIT_PREDICT", api_caller, cost=cost, scope=scope,
                            exempt_when=is_anonymous_caller)
    anonymous = rate_limit("RATELIMIT_PREDICT_ANONYMOUS", api_caller, cost=cost, scope=f"{scope}-anonymous",
                           exempt_when=lambda: not is_anonymous_caller())

    def decorator(view):
        return by_account(anonymous(view))

    return decorator


def _ensure_storage() -> None:
    """The embedded Redis is started on first use (get_redis); the limiter must not meet a missing socket."""
    if current_app.config.get("RATELIMIT_ENABLED") and current_app.config.get("EMBEDDED_REDIS"):
        get_redis()


# --- over the limit ------------------------------------------------------------------------------

def retry_after_seconds() -> int:
    """Seconds until the breached limit's window resets (at least 1)."""
    try:
        current = limiter.current_limit
        reset_at = current.window[0] if current is not None else time.time() + 1  # .reset_at adds a second
    except Exception:  # storage trouble while answering: a short, honest guess
        return 1
    # Redis reports the window's expiry in whole seconds (rounded): never tell a client to come back early.
    return max(1, math.ceil(reset_at - time.time() + 0.5))


def rate_limited_response(err: RateLimitExceeded):
    """429 with Retry-After: JSON for API paths, a page or htmx fragment for browsers."""
    from app.errors import error_response, wants_json

    seconds = retry_after_seconds()
    message = ngettext("Too many requests: the limit here is %(limit)s. Try again in %(num)s second.",
                       "Too many requests: the limit here is %(limit)s. Try again in %(num)s seconds.",
                       seconds, limit=err.description)
    if wants_json():
        response = jsonify({"error": message, "status": 429, "code": "rate_limited", "retry_after": seconds})
        response.status_code = 429
    else:
        response = current_app.make_response(error_response(message, 429, "rate_limited"))
    response.headers["Retry-After"] = str(seconds)
    return response


# --- set-up --------------------------------------------------------------------------------------

def limits_storage_uri(redis_url: str) -> str:
    """Flask-Limiter's name for the app's Redis (a unix socket is 'redis+unix://')."""
    return "redis+unix://" + redis_url[len("unix://"):] if redis_url.startswith("unix://") else redis_url


def init_rate_limits(app: Flask) -> None:
    """Trust TRUSTED_PROXIES proxies for the client address and scheme, and bind the limiter to the
    app's Redis. Nothing connects here: the storage opens its connection on the first limited request."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    if not app.config["RATELIMIT_STORAGE_URI"]:
        app.config["RATELIMIT_STORAGE_URI"] = limits_storage_uri(app.config["REDIS_URL"])
    limiter.init_app(app)
