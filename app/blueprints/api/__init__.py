"""The versioned JSON API (/api/v1/...): every step of the loop for scripts, with the same tokens as
POST /predict, the same services and access rules as the pages, and a generated OpenAPI document
(/api/openapi.json, readable at /api/docs). See contract.py for how an operation is declared."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api", template_folder="templates")


def init_app(app):
    from app.blueprints.api import (  # noqa: F401
        docs, views_datasets, views_evaluations, views_images, views_models, views_runs, views_webhooks,
    )
    from app.extensions import csrf

    csrf.exempt(bp)  # token calls carry no CSRF token; api_user() checks browser-session calls itself
    app.register_blueprint(bp)
