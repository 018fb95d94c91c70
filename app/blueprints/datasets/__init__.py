"""Datasets: create, upload, label, share, export."""
from flask import Blueprint

bp = Blueprint("datasets", __name__, template_folder="templates")


def init_app(app):
    from app.blueprints.datasets import views, views_classes, views_images, views_suggestions  # noqa: F401
    from app.blueprints.datasets import views_health  # noqa: F401

    app.register_blueprint(bp)
