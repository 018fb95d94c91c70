"""Admin area: users, queue overview, RQ dashboard, shutdown. 404 for everyone but admins."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


def init_app(app):
    from app.blueprints.admin import views  # noqa: F401

    app.register_blueprint(bp)
