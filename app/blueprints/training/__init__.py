"""Training runs and models: start, watch, evaluate, compare, download."""
from flask import Blueprint

bp = Blueprint("training", __name__, template_folder="templates")


def init_app(app):
    from app.blueprints.training import evaluation_views, names, views  # noqa: F401  (routes, Jinja filters)

    app.register_blueprint(bp)
