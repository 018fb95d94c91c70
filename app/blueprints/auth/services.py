"""Account logic: registration, authentication with lockout, safe redirects."""
from __future__ import annotations

import functools
import gzip
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from app.i18n import ngettext
from app.errors import Conflict, DomainError, ValidationError
from app.extensions import db, get_redis
from app.models import User, utcnow

COMMON_PASSWORDS = Path(__file__).resolve().parents[2] / "data" / "common-passwords.txt.gz"
MAX_PASSWORD_LENGTH = 1024  # long passphrases welcome; the hash's cost does not grow with the length


class LoginLocked(DomainError):
    status = 429
    code = "login_locked"


def normalise_username(username: str) -> str:
    return (username or "").strip()


def find_user(username: str) -> User | None:
    name = normalise_username(username).lower()
    return db.session.scalar(select(User).where(func.lower(User.username) == name))


def register_user(username: str, password: str, is_admin: bool = False) -> User:
    """Create an account; usernames are unique regardless of case."""
    username = normalise_username(username)
    if find_user(username) is not None:
        raise Conflict(_("The username “%(name)s” is taken. Choose another one.", name=username))
    problem = password_problem(password, username)
    if problem:
        raise ValidationError(problem)
    user = User(username=username, is_admin=is_admin)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user




def _dummy_hash() -> str:
    """A hash to check wrong-username logins against, so they cost what a real check costs."""
    cached = current_app.extensions.get("studio_dummy_hash")
    if cached is None:
        cached = generate_password_hash(secrets.token_hex(16))
        current_app.extensions["studio_dummy_hash"] = cached
    return cached


def _locked_error(until: datetime, now: datetime) -> LoginLocked:
    seconds = int((until - now).total_seconds()) + 1
    return LoginLocked(ngettext("Too many failed attempts for this account. Try again in %(num)s second.",
                                "Too many failed attempts for this account. Try again in %(num)s seconds.", seconds))


def _record_failure(user: User, now: datetime) -> None:
    """Count a failed login atomically in SQL and lock the account when the count reaches the limit
    (concurrent wrong passwords must not lose increments)."""
    failures = db.session.execute(
        update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)).scalar_one()
    if failures >= current_app.config["LOGIN_MAX_FAILURES"]:
        db.session.execute(update(User).where(User.id == user.id, User.failed_logins >= failures).values(
            locked_until=now + timedelta(seconds=current_app.config["LOGIN_LOCK_SECONDS"]), failed_logins=0))
    db.session.commit()


def _unknown_name_failure(username: str) -> None:
    """Wrong usernames are counted and locked like real accounts (in Redis), so the answers cannot
    tell which names exist."""
    cfg = current_app.config
    key = f"studio:login-fail:{normalise_username(username).lower()[:80]}"
    redis = get_redis()
    failures = redis.incr(key)
    redis.expire(key, cfg["LOGIN_LOCK_SECONDS"])
    if failures >= cfg["LOGIN_MAX_FAILURES"]:
        redis.set(key + ":locked", 1, ex=cfg["LOGIN_LOCK_SECONDS"])
        redis.delete(key)


def _unknown_name_locked(username: str) -> int | None:
    ttl = get_redis().ttl(f"studio:login-fail:{normalise_username(username).lower()[:80]}:locked")
    return ttl if ttl and ttl > 0 else None


def authenticate(username: str, password: str) -> User | None:
    """Return the user for correct credentials, None otherwise; lock after repeated failures.

    Known and unknown usernames take the same time (a password hash is always checked) and get the
    same answers, lockout included. A deleted account is an unknown one."""
    user = find_user(username)
    if user is not None and user.deleted_at is not None:
        user = None
    now = utcnow()
    if user is None:
        check_password_hash(_dummy_hash(), password or "")
        seconds = _unknown_name_locked(username)
        if seconds:
            raise _locked_error(now + timedelta(seconds=seconds - 1), now)
        _unknown_name_failure(username)
        return None
    correct = user.check_password(password)
    if user.locked_until and user.locked_until > now:
        raise _locked_error(user.locked_until, now)
    if not correct:
        _record_failure(user, now)
        return None
    if user.is_disabled:
        raise DomainError(_("This account has been disabled by an administrator."), 403)
    user.failed_logins = 0
    user.locked_until = None
    db.session.commit()
    return user


@functools.lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 10,000 most common passwords (app/data/common-passwords.txt.gz), lower case."""
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip().lower() for line in fh if line.strip())


def password_problem(password: str, username: str = "") -> str | None:
    """Why a new password is not acceptable, in plain words; None when it is fine."""
    cfg = current_app.config
    if len(password or "") < cfg["MIN_PASSWORD_LENGTH"]:
        return _("Use at least %(count)s characters.", count=cfg["MIN_PASSWORD_LENGTH"])
    if len(password) > MAX_PASSWORD_LENGTH:
        return _("Use at most %(count)s characters.", count=MAX_PASSWORD_LENGTH)
    if password.lower() in common_passwords() or password.lower() == (username or "").strip().lower():
        return _("This password is one of the most common ones, so it is easy to guess. Choose another.")
    return None


def change_password(user: User, current: str, new: str) -> None:
    """Set a new password (the current one must be right); other signed-in browsers are logged out and
    a reset link an admin made for the user stops working."""
    from app.blueprints.auth.reset_links import cancel_reset_link
    from app.blueprints.auth.sessions import end_other_sessions

    if not user.check_password(current or ""):
        raise ValidationError(_("Your current password is not right."))
    problem = password_problem(new, user.username)
    if problem:
        raise ValidationError(problem)
    user.set_password(new)
    cancel_reset_link(user)
    db.session.commit()
    end_other_sessions(user)


def save_language(user: User, code: str | None) -> None:
    """Remember the user's language ('en', 'pt_BR', 'es'); None = follow the browser again."""
    user.locale = code
    db.session.commit()


def safe_next_url(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login."""
    if not target:
        return None
    target = target.strip().replace("\\", "/")
    if any(ord(c) < 32 or ord(c) == 127 for c in target):  # CR/LF would split the Location header
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def unauthorized_response():
    """Anonymous users go to the login page and come back; htmx gets HX-Redirect, APIs a 401."""
    from app.errors import wants_json

    if wants_json():
        from flask import jsonify

        return jsonify({"error": "Log in or send an API token.", "status": 401, "code": "unauthorized"}), 401
    login_url = url_for("auth.login", next=request.full_path.rstrip("?"))
    if getattr(request, "htmx", False):
        response = current_app.response_class(status=204)
        response.headers["HX-Redirect"] = login_url
        return response
    from flask import flash

    flash(_("Please log in to see that page."), "info")
    return redirect(login_url)
