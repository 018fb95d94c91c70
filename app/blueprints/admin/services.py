from functools import wraps

from flask import abort
from flask_login import current_user


def admin_required(view):
    """Admins only; everyone else (anonymous included) gets a 404, as if the page did not exist."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not (current_user.is_authenticated and current_user.is_admin):
            abort(404)
        return view(*args, **kwargs)

    return wrapped
