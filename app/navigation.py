"""Which part of the main navigation the current page belongs to (the highlighted menu entry)."""
from __future__ import annotations

from flask import Flask, request

# Pages whose blueprint does not say where they belong: the 'Try it' page is a model's page.
SECTION_OF_ENDPOINT = {"predict.try_model": "models", "predict.tokens": "api", "auth.account": "account"}
SECTION_OF_BLUEPRINT = {"training": "models", "api": "api", "admin": "admin"}


def nav_section() -> str | None:
    """'datasets', 'models', 'api', 'admin', 'account' or None, for the current request."""
    endpoint = request.endpoint or ""
    if endpoint in SECTION_OF_ENDPOINT:
        return SECTION_OF_ENDPOINT[endpoint]
    if "datasets" in request.blueprints:
        return "datasets"
    return SECTION_OF_BLUEPRINT.get(request.blueprint or "")


def init_navigation(app: Flask) -> None:
    app.add_template_global(nav_section)
