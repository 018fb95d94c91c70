"""Account logic: registration, authentication with lockout, safe redirects."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, redirect, request, url_for
from sqlalchemy import func, select

from app.errors import Conflict, DomainError
from app.extensions import db
from app.models import User, utcnow


class LoginLocked(DomainError):
    status = 429


def normalise_username(username: str) -> str:
    return (username or "").strip()


def find_user(username: str) -> User | None:
    name = normalise_username(username).lower()
    return db.session.scalar(select(User).where(func.lower(User.username) == name))


def register_user(username: str, password: str, is_admin: bool = False) -> User:
    """Create an account; usernames are unique regardless of case."""
    username = normalise_username(username)
    if find_user(username) is not None:
        raise Conflict(f"The username '{username}' is taken. Choose another one.")
    user = User(username=username, is_admin=is_admin)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(username: str, password: str) -> User | None:
    """Return the user for correct credentials, None otherwise; lock after repeated failures."""
    user = find_user(username)
    if user is None:
        return None
    now = utcnow()
    if user.locked_until and user.locked_until > now:
        seconds = int((user.locked_until - now).total_seconds()) + 1
        raise LoginLocked(
            f"Too many failed attempts for this account. Try again in {seconds} seconds."
        )
    if not user.check_password(password):
        user.failed_logins += 1
        if user.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
            user.locked_until = now + timedelta(seconds=current_app.config["LOGIN_LOCK_SECONDS"])
            user.failed_logins = 0
        db.session.commit()
        return None
    if user.is_disabled:
        raise DomainError("This account has been disabled by an administrator.", 403)
    user.failed_logins = 0
    user.locked_until = None
    db.session.commit()
    return user


def safe_next_url(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login."""
    if not target:
        return None
    target = target.strip().replace("\\", "/")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def unauthorized_response():
    """Anonymous users go to the login page and come back; htmx gets HX-Redirect, APIs a 401."""
    from app.errors import wants_json

    if wants_json():
        from flask import jsonify

        return jsonify({"error": "Log in or send an API token.", "status": 401}), 401
    login_url = url_for("auth.login", next=request.full_path.rstrip("?"))
    if getattr(request, "htmx", False):
        response = current_app.response_class(status=204)
        response.headers["HX-Redirect"] = login_url
        return response
    from flask import flash

    flash("Please log in to see that page.", "info")
    return redirect(login_url)
