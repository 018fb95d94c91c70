"""Suggest labels: queue a model over the unlabeled images, review its guesses, accept them."""
from flask import flash, redirect, request, url_for
from flask_login import current_user, login_required
from flask_babel import gettext as _

from app.access import get_dataset_for
from app.blueprints.datasets.context import page_context
from app.blueprints.datasets.images.services import parse_ids
from app.blueprints.datasets.suggestions import bp, review, services
from app.errors import DomainError, NotFound
from app.ids import parse_id
from app.rendering import render_page


def _render(dataset, message: str | None = None, error: str | None = None, status: int = 200,
            undo_id: int | None = None):
    """The whole page, or for htmx requests (polling, accepting) just the suggestions partial."""
    state = services.load_state(dataset.id)
    models = services.usable_models(dataset.id)
    return render_page("suggestions/show.html", "suggestions/_suggestions.html", status, state=state,
                       groups=review.pending_groups(dataset.id, state), message=message, error=error,
                       models=models, best=services.best_model(models, current_user.default_model_id),
                       undo_id=undo_id, undo_message=message, **page_context(dataset))


@bp.route("/datasets/<int:dataset_id>/suggestions")
@login_required
def show_suggestions(dataset_id: int):
    undo_id = parse_id(request.args.get("undo"))  # after accepting without JavaScript
    return _render(get_dataset_for(current_user, dataset_id), undo_id=undo_id,
                   message=_("You can undo that for a short while.") if undo_id else None)


@bp.route("/datasets/<int:dataset_id>/suggestions", methods=["POST"])
@login_required
def request_suggestions(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    model_id = request.form.get("model_id", "")
    try:
        if model_id and parse_id(model_id) is None:
            raise NotFound(_("This model does not exist for this dataset, or it has not finished training."))
        services.request_suggestions(dataset.id, parse_id(model_id), current_user.id)
    except DomainError as err:
        return _render(dataset, error=err.message, status=err.status)
    return redirect(url_for("datasets.suggestions.show_suggestions", dataset_id=dataset.id))


@bp.route("/datasets/<int:dataset_id>/suggestions/accept", methods=["POST"])
@login_required
def accept_suggestions(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    group = request.form.get("group")
    try:
        ids = None if group is not None else parse_ids(request.form.getlist("image_ids"))
        accepted = review.accept_suggestions(dataset.id, current_user.id, ids, group)
    except DomainError as err:
        return _render(dataset, error=err.message, status=err.status)
    if request.htmx:
        return _render(dataset, message=accepted.message(), undo_id=accepted.undo_id)
    flash(accepted.message(), "success")
    return redirect(url_for("datasets.suggestions.show_suggestions", dataset_id=dataset.id, undo=accepted.undo_id))
