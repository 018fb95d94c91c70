"""One-time password reset links: an admin (Admin -> Users, or `flask reset-link`) makes one and hands it
to the user privately; there is no email on a self-hosted install.

The link carries a random token; only its SHA-256 is stored on the user's row, so a copy of the database
cannot be used to take over accounts. One link per user: a new one replaces the previous one, and using it
(or disabling the account, or a password change) uses it up.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update

from app.blueprints.auth.services import password_problem
from app.blueprints.auth.sessions import end_other_sessions
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import User, utcnow


@dataclass(frozen=True)
class ResetLink:
    user_id: int
    token: str
    expires_at: datetime

    @property
    def path(self) -> str:
        return f"/reset-password/{self.token}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_reset_link(user: User) -> ResetLink:
    """A new link for `user`, valid for PASSWORD_RESET_HOURS; any earlier link stops working."""
    if user.is_disabled:
        raise Conflict(_("%(name)s is disabled. Enable the account first, then create a reset link.",
                         name=user.username))
    token = secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(hours=current_app.config["PASSWORD_RESET_HOURS"])
    user.reset_token_hash, user.reset_expires_at = _hash(token), expires_at
    db.session.commit()
    return ResetLink(user.id, token, expires_at)


def cancel_reset_link(user: User) -> None:
    """Forget the user's link (the caller commits)."""
    user.reset_token_hash = user.reset_expires_at = None


def _not_valid() -> NotFound:
    return NotFound(_("This reset link is not valid any more. Ask an administrator for a new one."))


def user_for_reset_token(token: str) -> User:
    """The account a live link belongs to; NotFound for an unknown, used or expired link or a disabled account."""
    if not token or len(token) > 100:
        raise _not_valid()
    user = db.session.scalar(select(User).where(User.reset_token_hash == _hash(token)))
    if user is None or user.is_disabled or not user.reset_expires_at or user.reset_expires_at <= utcnow():
        raise _not_valid()
    return user


def reset_password(token: str, password: str) -> User:
    """Set the password of the link's account and use the link up; every session of that user ends.

    The link is claimed with one conditional UPDATE, so two requests racing with the same link cannot
    both set a password."""
    user = user_for_reset_token(token)
    problem = password_problem(password, user.username)
    if problem:
        raise ValidationError(problem)
    claimed = db.session.execute(
        update(User).where(User.id == user.id, User.reset_token_hash == _hash(token))
        .values(reset_token_hash=None, reset_expires_at=None)).rowcount
    if claimed != 1:
        db.session.rollback()
        raise _not_valid()
    user.set_password(password)
    user.failed_logins, user.locked_until = 0, None  # the owner proved who they are: no lockout left
    db.session.commit()
    end_other_sessions(user, keep_current=False)
    return user
