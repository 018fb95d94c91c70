"""Training pages: start a run, watch it live, read its results, list/compare/delete/download models."""
from flask import (Response, flash, make_response, redirect, render_template, request,
                   stream_with_context, url_for)
from flask_login import current_user, login_required
from flask_babel import gettext as _

from app.blueprints.datasets.readiness import missing_for_training
from app.blueprints.training import bp, deletion, downloads, evaluations, exports, services
from app.blueprints.training.forms import MODE_HELP, OPTION_HELP, TrainForm
from app.blueprints.training.results import compare_settings, compare_verdict, live_context, results_context
from app.blueprints.training.thresholds import cell_images, saved_message, threshold_context
from app.errors import DomainError, QuotaExceeded, ValidationError
from app.ids import parse_id
from app.rendering import render_page


@bp.route("/models")
@login_required
def list_models():
    sort = "accuracy" if request.args.get("sort") == "accuracy" else "date"
    deleted = parse_id(request.args.get("deleted"))  # just deleted: a toast offers to bring it back
    return _models_page(sort, request.args.get("dataset", type=int), request.args.getlist("pick", type=int),
                        restorable=services.restorable_run(current_user, deleted) if deleted else None)


def _models_page(sort: str = "date", dataset_id: int | None = None, picked: list[int] | None = None,
                 status: int = 200, restorable=None):
    runs = services.list_runs(current_user, sort, dataset_id)
    return render_template("training/list.html", runs=runs, sort=sort, dataset_id=dataset_id,
                           picked=picked or [], restorable=restorable), status


@bp.route("/datasets/<int:dataset_id>/train", methods=["GET", "POST"])
@login_required
def new_run(dataset_id: int):
    from app.ml.networks import list_architectures

    dataset = services.dataset_for_training(current_user, dataset_id)
    missing = missing_for_training(dataset.id) if request.method == "GET" else None  # a POST: start_run checks
    if missing:  # say what is missing instead of a form that cannot work
        return render_template("training/not_ready.html", dataset=dataset, missing=missing)
    # a POST counts the classes once, in start_run (at 200,000 images each count is ~25 ms): the page's
    # counts are read only when the form is shown again, or when a POST leaves the network to the form,
    # whose preselected one depends on how many images there are
    counted = request.method == "GET" or not request.form.get("architecture")
    counts = services.label_counts(dataset.id) if counted else {}
    form = TrainForm()
    form.set_architectures(list_architectures(), sum(counts.values()))
    form.fill_name(dataset.name, services.run_names(dataset))
    error = None
    if form.is_submitted() and form.validate_all():
        try:
            run = services.start_run(current_user, dataset.id, form.name.data, form.architecture.data,
                                     form.mode.data, form.option_values())
        except (ValidationError, QuotaExceeded) as err:  # said on the form, which keeps what was chosen
            error = err.message
        else:
            # no "queued" flash: the run page's live card says queued / running / finished, and stays true;
            # only a warning about what this run will lack (it keeps no validation and no test images)
            if warning := form.split_warning():
                flash(warning, "warning")
            target = url_for("training.run_detail", run_id=run.id)
            if request.htmx:  # htmx would follow a 302 and swap the whole page into the form
                return "", 204, {"HX-Redirect": target}
            return redirect(target)
    status = 422 if (error or form.errors) else 200
    if not counted:
        counts = services.label_counts(dataset.id)
        form.set_architectures(list_architectures(), sum(counts.values()))
    return render_page("training/new_run.html", "training/_run_form.html", status, form=form,
                       dataset=dataset, error=error, counts=counts,
                       mode_help=MODE_HELP, option_help=OPTION_HELP)


@bp.route("/models/<int:run_id>")
@login_required
def run_detail(run_id: int):
    run = services.view_run(current_user, run_id)
    return render_template("training/run_detail.html", run=run, **live_context(run, current_user),
                           **results_context(run), undoable=deletion.undo_seconds() > 0,
                           **evaluations.panel_context(current_user, run))


@bp.route("/models/<int:run_id>/progress")
@login_required
def run_progress(run_id: int):
    run = services.view_run(current_user, run_id)
    response = make_response(render_template("training/_run_progress.html", run=run,
                                             **live_context(run, current_user)))
    if run.finished:
        response.headers["HX-Trigger"] = "run-finished"  # the results section reloads itself
    return response


@bp.route("/models/<int:run_id>/results")
@login_required
def run_results(run_id: int):
    run = services.view_run(current_user, run_id)
    context = dict(run=run, can_delete=services.can_delete(current_user, run), **results_context(run))
    return (render_template("training/_results.html", **context)
            + render_template("training/_headline.html", oob=True, **context))  # the plain result, at the top


@bp.route("/models/<int:run_id>/threshold", methods=["POST"])
@login_required
def save_threshold(run_id: int):
    error = None
    try:
        raw = "" if request.form.get("clear") else request.form.get("percent")
        run = services.save_threshold(current_user, run_id, raw)
    except ValidationError as err:
        run, error = services.view_run(current_user, run_id), err.message
    if request.htmx:
        return render_template("training/_threshold.html", run=run, th=threshold_context(run), error=error,
                               saved_now=error is None, can_delete=True), 422 if error else 200
    flash(error or saved_message(run), "error" if error else "success")
    return redirect(url_for("training.run_detail", run_id=run.id) + "#threshold")


@bp.route("/models/<int:run_id>/confusion/<int:true_index>/<int:predicted_index>")
@login_required
def confusion_cell(run_id: int, true_index: int, predicted_index: int):
    run = services.view_run(current_user, run_id)
    cell = cell_images(run, true_index, predicted_index)
    return render_page("training/cell.html", "training/_cell_images.html", run=run, cell=cell)


@bp.route("/models/<int:run_id>/cancel", methods=["POST"])
@login_required
def cancel_run(run_id: int):
    run = services.cancel_run(current_user, run_id)
    if request.htmx:
        return render_template("training/_run_progress.html", run=run, **live_context(run, current_user))
    flash(_("Cancelled.") if run.status == "cancelled" else _("Stopping after the current step…"), "info")
    return redirect(url_for("training.run_detail", run_id=run.id))


@bp.route("/models/<int:run_id>/retry", methods=["POST"])
@login_required
def retry_run(run_id: int):
    run = services.retry_run(current_user, run_id)
    flash(_("Queued again as “%(name)s”.", name=run.name), "success")
    return redirect(url_for("training.run_detail", run_id=run.id))


@bp.route("/models/<int:run_id>/train-more", methods=["POST"])
@login_required
def train_more(run_id: int):
    try:
        run = services.train_more(current_user, run_id, request.form.get("epochs"))
    except (ValidationError, QuotaExceeded) as err:  # said on the model's own page, not a bare error page
        flash(err.message, "error")
        return run_detail(run_id), err.status
    flash(_("Queued “%(name)s”: it continues from model #%(id)s's checkpoint.", name=run.name, id=run_id), "success")
    return redirect(url_for("training.run_detail", run_id=run.id))


@bp.route("/models/<int:run_id>/split")
@login_required
def run_split(run_id: int):
    page = exports.split_page(current_user, run_id, request.args.get("part"), request.args.get("after", type=int))
    return render_page("training/split.html", "training/_split_rows.html", **page)


@bp.route("/models/<int:run_id>/split.csv")
@login_required
def split_csv(run_id: int):
    name, chunks = exports.split_csv(current_user, run_id)
    return Response(stream_with_context(chunks), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.route("/models/<int:run_id>/history.csv")
@login_required
def history_csv(run_id: int):
    name, body = exports.history_csv(current_user, run_id)
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.route("/models/<int:run_id>/delete", methods=["POST"])
@login_required
def delete_run(run_id: int):
    services.delete_run(current_user, run_id)
    if deletion.undo_seconds() > 0:  # the list's toast says so, with Undo
        return redirect(url_for("training.list_models", deleted=run_id))
    flash(_("The model and its files were deleted."), "success")
    return redirect(url_for("training.list_models"))


@bp.route("/models/<int:run_id>/restore", methods=["POST"])
@login_required
def restore_run(run_id: int):
    try:
        run = services.restore_run(current_user, run_id)
    except DomainError as err:  # too late, not theirs, or over the model quota: said on the list
        flash(err.message, "error")
        return _models_page(status=err.status)
    flash(_("Model “%(name)s” is back, as it was.", name=run.name), "success")
    return redirect(url_for("training.run_detail", run_id=run.id))


@bp.route("/models/compare")
@login_required
def compare_models():
    picks = request.args.getlist("pick", type=int)  # the list page's checkboxes; ?a=&b= also work
    try:
        a, b = services.compare_runs(current_user, picks, request.args.get("a", type=int),
                                     request.args.get("b", type=int))
    except ValidationError as err:  # said on the list, the boxes still ticked (works without scripts)
        flash(err.message, "error")
        return redirect(url_for("training.list_models", pick=picks))
    ra, rb = results_context(a), results_context(b)
    return render_template("training/compare.html", a=a, b=b, ra=ra, rb=rb, verdict=compare_verdict(a, ra, b, rb),
                           settings=compare_settings(a, b))


@bp.route("/models/<int:run_id>/download/<kind>")
@login_required
def download(run_id: int, kind: str):
    return downloads.response(current_user, run_id, kind)
