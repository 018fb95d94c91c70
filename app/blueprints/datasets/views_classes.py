"""Classes and sharing pages (HTMX partials, plain form posts work too)."""
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.access import get_dataset_for
from app.blueprints.datasets import bp
from app.blueprints.datasets import classes as class_service
from app.blueprints.datasets import sharing
from app.blueprints.datasets.forms import ClassForm, ShareForm
from app.blueprints.datasets.services import class_counts
from app.blueprints.datasets.views import page_context
from app.errors import DomainError


def _classes_page(dataset, form=None, status=200):
    counts, unlabeled = class_counts(dataset.id)
    ctx = dict(form=form or ClassForm(formdata=None), counts=counts, unlabeled=unlabeled, **page_context(dataset))
    template = "datasets/_classes.html" if request.htmx else "datasets/classes.html"
    return render_template(template, **ctx), status


def _after_change(dataset, endpoint, message):
    flash(message, "success")
    if request.htmx:
        return (_classes_page if endpoint == "datasets.list_classes" else _shares_page)(dataset)
    return redirect(url_for(endpoint, dataset_id=dataset.id))


@bp.route("/datasets/<int:dataset_id>/classes", methods=["GET", "POST"])
@login_required
def list_classes(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor" if request.method == "POST" else "viewer")
    form = ClassForm()
    if request.method == "POST":
        try:
            if not form.validate():
                raise DomainError(next(iter(form.errors.values()))[0], 422)
            label = class_service.add_class(dataset.id, form.name.data, form.color.data)
        except DomainError as err:
            flash(err.message, "error")
            return _classes_page(dataset, form, err.status)
        return _after_change(dataset, "datasets.list_classes", f"Class '{label.name}' added.")
    return _classes_page(dataset)


@bp.route("/datasets/<int:dataset_id>/classes/<int:label_id>", methods=["POST"])
@login_required
def update_class(dataset_id: int, label_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    if request.form.get("move") in ("up", "down"):
        class_service.move_class(dataset.id, label_id, request.form["move"])
        return _after_change(dataset, "datasets.list_classes", "Order changed.")
    try:
        label = class_service.update_class(dataset.id, label_id, request.form.get("name", ""),
                                           request.form.get("color"))
    except DomainError as err:
        flash(err.message, "error")
        return _classes_page(dataset, status=err.status)
    return _after_change(dataset, "datasets.list_classes", f"Class '{label.name}' saved.")


@bp.route("/datasets/<int:dataset_id>/classes/<int:label_id>/delete", methods=["POST"])
@login_required
def delete_class(dataset_id: int, label_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    count = class_service.delete_class(dataset.id, label_id)
    return _after_change(dataset, "datasets.list_classes",
                         f"Class deleted; {count} image{'s' if count != 1 else ''} are now unlabeled.")


def _shares_page(dataset, form=None, status=200):
    ctx = dict(form=form or ShareForm(formdata=None), shares=sharing.list_shares(dataset.id), **page_context(dataset))
    template = "datasets/_shares.html" if request.htmx else "datasets/sharing.html"
    return render_template(template, **ctx), status


@bp.route("/datasets/<int:dataset_id>/sharing", methods=["GET", "POST"])
@login_required
def share_dataset(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "owner")
    form = ShareForm()
    if request.method == "POST":
        try:
            if not form.validate():
                raise DomainError(next(iter(form.errors.values()))[0], 422)
            share = sharing.share_dataset(dataset, form.username.data, form.role.data)
        except DomainError as err:
            flash(err.message, "error")
            return _shares_page(dataset, form, err.status)
        return _after_change(dataset, "datasets.share_dataset",
                             f"Shared with {share.user.username} as {share.role}.")
    return _shares_page(dataset)


@bp.route("/datasets/<int:dataset_id>/sharing/<int:share_id>/delete", methods=["POST"])
@login_required
def revoke_share(dataset_id: int, share_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "owner")
    username = sharing.revoke_share(dataset.id, share_id)
    return _after_change(dataset, "datasets.share_dataset", f"{username} no longer has access.")
