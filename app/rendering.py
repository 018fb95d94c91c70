"""Full page or partial: the one place that reads the HX-Request header to decide."""
from __future__ import annotations

from flask import render_template, request


def render_page(full: str, partial: str, status: int = 200, **context):
    """htmx requests get the partial, normal requests the full page (which includes that partial)."""
    return render_template(partial if request.htmx else full, **context), status
