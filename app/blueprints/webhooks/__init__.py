"""Webhooks: a user's addresses the studio calls when a training run, an evaluation or an import finishes
(pages under /account/webhooks, the API's /api/v1/webhooks; deliveries are background jobs)."""
import importlib

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/account/webhooks", template_folder="templates")


def init_app(app):
    for name in ("models", "views"):  # the tables, the routes
        importlib.import_module(f"app.blueprints.webhooks.{name}")
    app.register_blueprint(bp)
