"""Personal API tokens: created once (shown once), stored as a SHA-256 hash, revocable.

A token is 32 random bytes (url-safe base64) behind a short recognisable prefix, so hashing it
with plain SHA-256 is safe: there is nothing to brute-force the way there is with passwords.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from flask_babel import gettext as _

from app.errors import DomainError, NotFound, ValidationError
from app.extensions import db
from app.models import ApiToken, User, utcnow

TOKEN_PREFIX = "ics_"
PREFIX_LENGTH = 10          # what the tokens page shows ("ics_AbCdEf…"), fits ApiToken.prefix
NAME_MAX = 80
LAST_USED_RESOLUTION = timedelta(minutes=1)  # don't write to the database on every request


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


def hash_token(plain: str) -> str:
    """Hex SHA-256 of a token, the only form kept in the database."""
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def create_token(user_id: int, name: str) -> tuple[ApiToken, str]:
    """Create a token for the user; returns (row, plain token). The plain token is never stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("Give the token a name, e.g. the script or machine that will use it."))
    if len(name) > NAME_MAX:
        raise ValidationError(_("The token name can be at most %(num)s characters.", num=NAME_MAX))
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user_id, name=name, token_hash=hash_token(plain), prefix=plain[:PREFIX_LENGTH])
    db.session.add(token)
    db.session.commit()
    return token, plain


def list_tokens(user_id: int) -> list[ApiToken]:
    """The user's tokens, newest first, revoked ones included (shown as revoked)."""
    query = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
    return list(db.session.scalars(query))


def revoke_token(user_id: int, token_id: int) -> ApiToken:
    """Revoke one of the user's tokens (idempotent). Someone else's token is a 404."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound(_("This token does not exist."))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return token


def user_for_token(plain: str) -> User:
    """The active user a bearer token belongs to; Unauthorized (401) for unknown or revoked tokens."""
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plain or "")))
    if token is None or token.revoked_at is not None:
        raise Unauthorized(_("This API token is not valid (it may have been revoked). Create a new one on the API page."))
    user = token.user
    if user is None or user.is_disabled:
        raise Unauthorized(_("The account this API token belongs to is disabled."))
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    return user


def bearer_from_header(header: str | None) -> str | None:
    """The token in an 'Authorization: Bearer <token>' header, '' for a malformed one, None if absent."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return value.strip()
