"""Dataset health routes: the report page (polled while a check runs), start a check, one-click fixes."""
from flask import flash, redirect, request, url_for
from flask_login import current_user, login_required

from app.access import get_dataset_for
from app.blueprints.datasets.context import page_context
from app.blueprints.datasets.health import bp, services
from app.errors import DomainError
from app.ids import parse_id
from app.rendering import render_page


def _render(dataset, message: str | None = None, status: int = 200, undo_id: int | None = None):
    """The whole page, or (htmx) only the report partial that polls/updates itself."""
    return render_page("health/show.html", "health/_report.html", status, message=message,
                       status_ok=status < 400, undo_id=undo_id, undo_message=message,
                       **services.health_page(dataset.id), **page_context(dataset))


@bp.route("/datasets/<int:dataset_id>/health")
@login_required
def show_health(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id)
    undo_id = parse_id(request.args.get("undo"))  # after a fix without JavaScript
    return _render(dataset, "You can undo that change for a short while." if undo_id else None, undo_id=undo_id)


@bp.route("/datasets/<int:dataset_id>/health/check", methods=["POST"])
@login_required
def check_health(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    try:
        services.start_health_check(dataset.id)
    except DomainError as err:
        return _failed(dataset, err)
    if request.htmx:
        return _render(dataset)
    flash("Health check started. This page updates when it is done.", "success")
    return redirect(url_for("datasets.health.show_health", dataset_id=dataset.id))


@bp.route("/datasets/<int:dataset_id>/health/fix", methods=["POST"])
@login_required
def fix_health(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    image_id = request.form.get("image_id", type=int)
    try:
        message, undo_id = services.apply_fix(dataset.id, request.form.get("key", ""),
                                              request.form.get("action", ""), image_id, current_user.id)
    except DomainError as err:
        return _failed(dataset, err)
    if request.htmx:
        return _render(dataset, message, undo_id=undo_id)
    flash(message, "success")
    return redirect(url_for("datasets.health.show_health", dataset_id=dataset.id, undo=undo_id))


def _failed(dataset, err: DomainError):
    """htmx: the report again with the reason on top (status kept); otherwise the shared error page."""
    if not request.htmx:
        raise err
    return _render(dataset, err.message, err.status)
