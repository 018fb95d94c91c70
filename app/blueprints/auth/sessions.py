"""Signed-in browsers: one UserSession row per login, named by a random token in the cookies.

Flask-Login keeps `user.get_id()` ("<user id>:<token>") in the signed session cookie and in the
remember-me cookie. The token is new at every login, so every login gets different cookies; logging
out deletes the row, so a copied cookie (session or remember-me) stops working; "log out everywhere",
a password change and an admin disabling the account delete the user's other rows.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app, request
from sqlalchemy import delete, select

from app.extensions import db
from app.models import User, UserSession, utcnow

TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is written at most this often (no write per request)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _lifetime() -> timedelta:
    return current_app.config["REMEMBER_COOKIE_DURATION"]


def start_session(user: User) -> User:
    """A new session row for this login; the user object now carries its token (for login_user)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    agent = (request.user_agent.string or "")[:200] if request else ""
    db.session.add(UserSession(user_id=user.id, token_hash=_hash(token), user_agent=agent, created_at=now,
                               last_seen_at=now, expires_at=now + _lifetime()))
    db.session.commit()
    user.session_token = token
    return user


def load_session_user(user_id: str) -> User | None:
    """flask-login's user_loader: the user of a live session named "<id>:<token>", else None."""
    number, _, token = (user_id or "").partition(":")
    if not number.isdigit() or not token or len(number) > 18:
        return None
    row = db.session.execute(
        select(UserSession, User).join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == _hash(token), UserSession.user_id == int(number))
    ).first()
    if row is None:
        return None
    session, user = row
    now = utcnow()
    if session.expires_at <= now:
        return None
    if now - session.last_seen_at >= TOUCH_EVERY:
        session.last_seen_at = now
        db.session.commit()
    user.session_token = token
    return user


def end_session(user: User) -> None:
    """Log this browser out: its cookies stop working."""
    if user.session_token:
        db.session.execute(delete(UserSession).where(UserSession.token_hash == _hash(user.session_token)))
        db.session.commit()


def end_other_sessions(user: User, keep_current: bool = True) -> int:
    """Log the user out everywhere (but here, with keep_current); returns how many sessions ended."""
    query = delete(UserSession).where(UserSession.user_id == user.id)
    if keep_current and user.session_token:
        query = query.where(UserSession.token_hash != _hash(user.session_token))
    count = db.session.execute(query).rowcount or 0
    db.session.commit()
    return count


def list_sessions(user: User) -> list[dict]:
    """The user's live sessions, newest first, with which one is this browser."""
    current = _hash(user.session_token) if user.session_token else None
    rows = db.session.scalars(select(UserSession).where(
        UserSession.user_id == user.id, UserSession.expires_at > utcnow()).order_by(UserSession.created_at.desc()))
    return [{"session": row, "current": row.token_hash == current} for row in rows]
