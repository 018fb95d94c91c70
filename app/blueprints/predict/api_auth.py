"""Who is calling the JSON API: a bearer token, a browser session, or nobody.

The API views are exempt from Flask-WTF's CSRF check so scripts with tokens can call them. A
browser session is only accepted with a valid CSRF token or a same-origin Origin/Referer header,
so another site cannot make a logged-in visitor's browser call the API.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError as CSRFValidationError

from app.blueprints.predict.tokens import bearer_from_header, user_for_token
from app.errors import DomainError
from app.models import User

CSRF_HEADERS = ("X-CSRFToken", "X-CSRF-Token")


class CrossOrigin(DomainError):
    status = 403
    code = "forbidden"


def _origin_of(url: str | None) -> str | None:
    if not url:
        return None
    netloc = urlsplit(url).netloc.lower()
    return netloc or None


def _same_origin(url: str | None) -> bool:
    return _origin_of(url) == urlsplit(request.host_url).netloc.lower()


def _has_valid_csrf() -> bool:
    token = next((request.headers[h] for h in CSRF_HEADERS if request.headers.get(h)), None)
    token = token or request.form.get("csrf_token")
    if not token:
        return False
    try:
        validate_csrf(token)
    except CSRFValidationError:
        return False
    return True


def check_session_origin() -> None:
    """Refuse (403) session calls from another origin, or with neither CSRF token nor same-origin header."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and not _same_origin(origin):
        raise CrossOrigin("Calls from another website are refused. Use an API token instead.")
    if _has_valid_csrf():
        return
    if _same_origin(origin) or _same_origin(request.headers.get("Referer")):
        return
    raise CrossOrigin("A logged-in browser call needs its CSRF token (X-CSRFToken header). "
                      "Scripts should send an API token instead.")


def api_user() -> User | None:
    """The caller: the token's user, the session user (origin-checked), or None (anonymous)."""
    token = bearer_from_header(request.headers.get("Authorization"))
    if token is not None:
        return user_for_token(token)
    if current_user.is_authenticated:
        check_session_origin()
        return current_user._get_current_object()
    return None
