"""Dataset pages: list, create, overview, edit, delete; classes and sharing (HTMX partials, plain form
posts work too)."""
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_babel import gettext as _

from app.access import dataset_role, get_dataset_for
from app.blueprints.datasets import bp
from app.blueprints.datasets import classes as class_service
from app.blueprints.datasets import deletion, ownership, services, sharing
from app.blueprints.datasets.context import page_context
from app.blueprints.datasets.forms import ClassForm, DatasetForm, ShareForm
from app.blueprints.datasets.images.undo import latest_class_deletion
from app.i18n import ngettext, role_word
from app.errors import DomainError
from app.ids import parse_id
from app.rendering import render_page


@bp.route("/datasets")
@login_required
def list_datasets():
    deleted = parse_id(request.args.get("deleted"))  # just deleted: a toast offers to bring it back
    return _datasets_page(restorable=deletion.restorable(current_user.id, deleted) if deleted else None)


def _datasets_page(status: int = 200, restorable=None):
    return render_template("datasets/list.html", rows=services.list_datasets_for(current_user),
                           restorable=restorable), status


@bp.route("/datasets/new", methods=["GET", "POST"])
@login_required
def new_dataset():
    form = DatasetForm()
    if form.validate_on_submit():
        try:
            dataset = services.create_dataset(current_user.id, form.name.data, form.description.data)
        except DomainError as err:
            form.name.errors.append(err.message)
        else:
            flash(_("Dataset “%(name)s” created. Add some images to it.", name=dataset.name), "success")
            return redirect(url_for("datasets.show_dataset", dataset_id=dataset.id))
    return render_template("datasets/new.html", form=form), 422 if form.errors else 200


@bp.route("/datasets/<int:dataset_id>")
@login_required
def show_dataset(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id)
    undo_id = parse_id(request.args.get("undo"))  # after labeling from a CSV
    return render_template("datasets/show.html", **services.dataset_overview(dataset), **page_context(dataset),
                           undo_id=undo_id, undo_message=_("The images were labeled from the CSV."))


@bp.route("/datasets/<int:dataset_id>/edit", methods=["GET", "POST"])
@login_required
def edit_dataset(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "owner")
    form = DatasetForm(obj=dataset)
    if form.validate_on_submit():
        try:
            services.update_dataset(dataset, form.name.data, form.description.data)
        except DomainError as err:
            form.name.errors.append(err.message)
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("datasets.show_dataset", dataset_id=dataset.id))
    return render_template("datasets/edit.html", form=form, **page_context(dataset)), 422 if form.errors else 200


@bp.route("/datasets/<int:dataset_id>/delete", methods=["GET", "POST"])
@login_required
def delete_dataset(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "owner")
    if request.method == "POST":
        deletion.delete_dataset(dataset)
        if deletion.undo_seconds() > 0:  # the list's toast says so, with Undo
            return redirect(url_for("datasets.list_datasets", deleted=dataset_id))
        flash(_("Dataset “%(name)s” was deleted. Its images are removed in the background.", name=dataset.name),
              "success")
        return redirect(url_for("datasets.list_datasets"))
    summary = services.dataset_summary(dataset)
    return render_template("datasets/delete.html", summary=summary, undo_seconds=deletion.undo_seconds(),
                           **page_context(dataset))


@bp.route("/datasets/<int:dataset_id>/restore", methods=["POST"])
@login_required
def restore_dataset(dataset_id: int):
    try:
        dataset = deletion.restore_dataset(current_user.id, dataset_id)
    except DomainError as err:
        flash(err.message, "error")
        return _datasets_page(err.status)
    flash(_("Dataset “%(name)s” is back, as it was.", name=dataset.name), "success")
    return redirect(url_for("datasets.show_dataset", dataset_id=dataset.id))


# --- classes and sharing ------------------------------------------------------------------

def _classes_page(dataset, form=None, status=200, **undo):
    counts, unlabeled = services.class_counts(dataset.id)
    return render_page("datasets/classes.html", "datasets/_classes.html", status,
                       form=form or ClassForm(formdata=None), counts=counts, unlabeled=unlabeled,
                       **undo, **page_context(dataset))


def _shares_page(dataset, form=None, status=200, owner_username=None):
    return render_page("datasets/sharing.html", "datasets/_shares.html", status,
                       form=form or ShareForm(formdata=None), shares=sharing.list_shares(dataset.id),
                       owner_username=owner_username, **page_context(dataset))


def _after_change(dataset, endpoint, message):
    flash(message, "success")
    if request.htmx:
        return (_classes_page if endpoint == "datasets.list_classes" else _shares_page)(dataset)
    return redirect(url_for(endpoint, dataset_id=dataset.id))


def _require_valid(form) -> None:
    if not form.validate():
        raise DomainError(next(iter(form.errors.values()))[0], 422)


@bp.route("/datasets/<int:dataset_id>/classes", methods=["GET", "POST"])
@login_required
def list_classes(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor" if request.method == "POST" else "viewer")
    form = ClassForm()
    if request.method == "POST":
        try:
            _require_valid(form)
            label = class_service.add_class(dataset.id, form.name.data, form.color.data)
        except DomainError as err:
            flash(err.message, "error")
            return _classes_page(dataset, form, err.status)
        return _after_change(dataset, "datasets.list_classes", _("Class “%(name)s” added.", name=label.name))
    return _classes_page(dataset, **_latest_undo(dataset))


def _latest_undo(dataset) -> dict:
    """Undo for the user's latest class deletion here while it can still be undone: after deleting one
    without JavaScript, and after a reload."""
    action = latest_class_deletion(dataset.id, current_user.id)
    if action is None or dataset_role(current_user, dataset) not in ("owner", "editor"):
        return {}
    payload = action.payload or {}
    name, into = payload.get("label", {}).get("name", ""), payload.get("merged_into")
    if into:
        return _undo_toast(dataset, action.id, _("Class “%(name)s” was merged into “%(into)s”. You can undo that "
                                                 "for a short while.", name=name, into=into["name"]))
    return _undo_toast(dataset, action.id, _("Class “%(name)s” was deleted. You can undo that for a short while.",
                                             name=name))


def _undo_toast(dataset, undo_id: int | None, message: str) -> dict:
    """What the classes page needs to offer Undo (images/_undo_form_toast.html); coming back here."""
    if undo_id is None:
        return {}
    return {"undo_id": undo_id, "undo_message": message,
            "undo_next": url_for("datasets.list_classes", dataset_id=dataset.id)}


@bp.route("/datasets/<int:dataset_id>/classes/<int:label_id>", methods=["POST"])
@login_required
def update_class(dataset_id: int, label_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    if request.form.get("move") in ("up", "down"):
        class_service.move_class(dataset.id, label_id, request.form["move"])
        return _after_change(dataset, "datasets.list_classes", _("Order changed."))
    try:
        label = class_service.update_class(dataset.id, label_id, request.form.get("name", ""),
                                           request.form.get("color"))
    except DomainError as err:
        flash(err.message, "error")
        return _classes_page(dataset, status=err.status)
    return _after_change(dataset, "datasets.list_classes", _("Class “%(name)s” saved.", name=label.name))


@bp.route("/datasets/<int:dataset_id>/classes/<int:label_id>/delete", methods=["POST"])
@login_required
def delete_class(dataset_id: int, label_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    count, undo_id = class_service.delete_class(dataset.id, label_id, undoable_by=current_user.id)
    message = ngettext("Class deleted; %(num)s image is now unlabeled.",
                       "Class deleted; %(num)s images are now unlabeled.", count)
    if request.htmx:  # the toast says it, with its Undo
        return _classes_page(dataset, **_undo_toast(dataset, undo_id, message))
    flash(message, "success")
    return redirect(url_for("datasets.list_classes", dataset_id=dataset.id))  # its toast offers Undo


@bp.route("/datasets/<int:dataset_id>/classes/merge", methods=["POST"])
@login_required
def merge_classes(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "editor")
    try:
        merged = class_service.merge_class(dataset.id, parse_id(request.form.get("source")),
                                           parse_id(request.form.get("into")), undoable_by=current_user.id)
    except DomainError as err:
        flash(err.message, "error")
        return _classes_page(dataset, status=err.status, merge_open=True)
    message = ngettext("“%(name)s” merged into “%(into)s”: %(num)s image moved.",
                       "“%(name)s” merged into “%(into)s”: %(num)s images moved.", merged.moved,
                       name=merged.name, into=merged.into)
    if request.htmx:
        return _classes_page(dataset, **_undo_toast(dataset, merged.undo_id, message))
    flash(message, "success")
    return redirect(url_for("datasets.list_classes", dataset_id=dataset.id))


@bp.route("/datasets/<int:dataset_id>/sharing", methods=["GET", "POST"])
@login_required
def share_dataset(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "owner")
    form = ShareForm()
    if request.method == "POST":
        try:
            _require_valid(form)
            share = sharing.share_dataset(dataset, form.username.data, form.role.data)
        except DomainError as err:
            flash(err.message, "error")
            return _shares_page(dataset, form, err.status)
        return _after_change(dataset, "datasets.share_dataset",
                             _("Shared with %(name)s as %(role)s.", name=share.user.username, role=role_word(share.role)))
    return _shares_page(dataset)


@bp.route("/datasets/<int:dataset_id>/sharing/<int:share_id>/delete", methods=["POST"])
@login_required
def revoke_share(dataset_id: int, share_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "owner")
    username = sharing.revoke_share(dataset.id, share_id)
    return _after_change(dataset, "datasets.share_dataset", _("%(name)s no longer has access.", name=username))


@bp.route("/datasets/<int:dataset_id>/owner", methods=["POST"])
@login_required
def give_dataset(dataset_id: int):
    """The owner hands the dataset over; they keep editing it, so they land on its page, not on sharing."""
    dataset = get_dataset_for(current_user, dataset_id, "owner")
    username = request.form.get("username", "")
    try:
        receiver = ownership.give_dataset(dataset, username)
    except DomainError as err:
        flash(err.message, "error")
        return _shares_page(dataset, status=err.status, owner_username=username)
    flash(_("%(name)s now owns “%(dataset)s”. You can still upload and label as an editor.",
            name=receiver.username, dataset=dataset.name), "success")
    return redirect(url_for("datasets.show_dataset", dataset_id=dataset_id))
