"""Inference: POST /predict, browser inference, API tokens."""
from flask import Blueprint

bp = Blueprint("predict", __name__, template_folder="templates")


def init_app(app):
    from app.blueprints.predict import views  # noqa: F401

    app.register_blueprint(bp)
