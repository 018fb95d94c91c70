"""Full page or partial: the one place that reads the HX-Request header to decide."""
from __future__ import annotations

from flask import render_template, request


def wants_partial() -> bool:
    """An htmx request, except htmx restoring a page it had no copy of (Back to an address it pushed, when
    its history cache had dropped that page): that one replaces the whole body, so it needs the full page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_page(full: str, partial: str, status: int = 200, **context):
    """htmx requests get the partial, normal requests the full page (which includes that partial)."""
    return render_template(partial if wants_partial() else full, **context), status
