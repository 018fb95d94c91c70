"""Accounts: register, log in, log out."""
from flask import Blueprint

bp = Blueprint("auth", __name__, template_folder="templates")


def init_app(app):
    from app.blueprints.auth import views  # noqa: F401  (routes attach to bp)

    app.register_blueprint(bp)
