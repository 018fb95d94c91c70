"""Suggest labels: queue a model over the unlabeled images, review its guesses, accept them."""
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.access import get_dataset_for
from app.blueprints.datasets import bp
from app.blueprints.datasets import suggestions as service
from app.blueprints.datasets.labeling import parse_ids
from app.blueprints.datasets.views import page_context
from app.errors import DomainError


def _render(dataset, message: str | None = None, error: str | None = None, status: int = 200):
    """The whole page, or for htmx requests (polling, accepting) just the suggestions partial."""
    state = service.load_state(dataset.id)
    ctx = dict(state=state, groups=service.pending_groups(dataset.id, state), message=message, error=error,
               models=service.usable_models(dataset.id), **page_context(dataset))
    template = "datasets/_suggestions.html" if request.htmx else "datasets/suggestions.html"
    return render_template(template, **ctx), status


@bp.route("/datasets/<int:dataset_id>/suggestions")
@login_required
def show_suggestions(dataset_id: int):
    return _render(get_dataset_for(current_user, dataset_id))


@bp.route("/datasets/<int:dataset_id>/suggestions", methods=["POST"])
@login_required
def request_suggestions(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    model_id = request.form.get("model_id", "")
    try:
        service.request_suggestions(dataset.id, int(model_id) if model_id.isdigit() else None, current_user.id)
    except DomainError as err:
        return _render(dataset, error=err.message, status=err.status)
    return redirect(url_for("datasets.show_suggestions", dataset_id=dataset.id))


@bp.route("/datasets/<int:dataset_id>/suggestions/accept", methods=["POST"])
@login_required
def accept_suggestions(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    group = request.form.get("group")
    try:
        ids = None if group is not None else parse_ids(request.form.getlist("image_ids"))
        message = service.accept_suggestions(dataset.id, current_user.id, ids, group).message()
    except DomainError as err:
        return _render(dataset, error=err.message, status=err.status)
    if request.htmx:
        return _render(dataset, message=message)
    flash(message, "success")
    return redirect(url_for("datasets.show_suggestions", dataset_id=dataset.id))
