"""Dataset pages: list, create, overview (summary + upload), edit, delete, export."""
from flask import Response, current_app, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required

from app.access import dataset_role, get_dataset_for
from app.blueprints.datasets import bp
from app.blueprints.datasets import services
from app.blueprints.datasets.exports import export_zip
from app.blueprints.datasets.forms import DatasetForm
from app.errors import DomainError


@bp.app_template_global()
def train_url(dataset_id: int) -> str:
    """Link to the training page, which another feature provides (fallback: a plain path)."""
    if "training.new_run" in current_app.view_functions:
        return url_for("training.new_run", dataset_id=dataset_id)
    return f"/datasets/{dataset_id}/train"


def page_context(dataset) -> dict:
    """What every dataset page needs to show the right controls for the current user's role."""
    role = dataset_role(current_user, dataset)
    return {"dataset": dataset, "role": role, "can_edit": role in ("owner", "editor"), "is_owner": role == "owner"}


@bp.route("/datasets")
@login_required
def list_datasets():
    return render_template("datasets/list.html", rows=services.list_datasets_for(current_user))


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
            flash(f"Dataset '{dataset.name}' created. Add some images to it.", "success")
            return redirect(url_for("datasets.show_dataset", dataset_id=dataset.id))
    return render_template("datasets/new.html", form=form), 422 if form.errors else 200


@bp.route("/datasets/<int:dataset_id>")
@login_required
def show_dataset(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id)
    summary = services.dataset_summary(dataset)
    return render_template("datasets/show.html", summary=summary, **page_context(dataset))


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
            flash("Saved.", "success")
            return redirect(url_for("datasets.show_dataset", dataset_id=dataset.id))
    return render_template("datasets/edit.html", form=form, **page_context(dataset)), 422 if form.errors else 200


@bp.route("/datasets/<int:dataset_id>/delete", methods=["GET", "POST"])
@login_required
def delete_dataset(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id, "owner")
    if request.method == "POST":
        name = dataset.name
        services.delete_dataset(dataset)
        flash(f"Dataset '{name}' was deleted.", "success")
        return redirect(url_for("datasets.list_datasets"))
    summary = services.dataset_summary(dataset)
    return render_template("datasets/delete.html", summary=summary, **page_context(dataset))


@bp.route("/datasets/<int:dataset_id>/export")
@login_required
def export_dataset(dataset_id: int):
    dataset = get_dataset_for(current_user, dataset_id)
    chunks = stream_with_context(export_zip(dataset.id))
    filename = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset.name) or "dataset"
    return Response(chunks, mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.zip"'})
