"""App-wide request guards owned by operations: draining during shutdown, disabled accounts."""
from __future__ import annotations

from flask import Flask, flash, redirect, request, url_for
from flask_login import current_user, logout_user
from flask_babel import gettext as _

from app.errors import DomainError
from app.shutdown import is_shutting_down


def init_guards(app: Flask) -> None:
    """Register the guards on `app` (they run before every request)."""
    app.before_request(refuse_while_stopping)
    app.before_request(sign_out_disabled_user)


def refuse_while_stopping():
    """After a shutdown request this process finishes what it has but takes nothing new."""
    if is_shutting_down() and request.endpoint != "static":
        raise DomainError(_("The server is shutting down. Try again in a moment."), 503)


def sign_out_disabled_user():
    """An account disabled by an admin loses its open sessions on its next request."""
    if current_user.is_authenticated and current_user.is_disabled:
        logout_user()
        flash(_("This account has been disabled by an administrator."), "error")
        return redirect(url_for("auth.login"))
    return None

