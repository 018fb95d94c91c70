"""Evaluate a model on a dataset: start it from the model's page, watch it, read its results, cancel it."""
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.blueprints.training import bp, evaluations
from app.blueprints.training.evaluation_results import evaluation_context
from app.blueprints.training.views import run_detail
from app.errors import Conflict, ValidationError
from app.ids import parse_id
from app.rendering import render_page


@bp.route("/models/<int:run_id>/evaluations", methods=["POST"])
@login_required
def start_evaluation(run_id: int):
    try:
        evaluation = evaluations.request_evaluation(current_user, run_id, parse_id(request.form.get("dataset_id")))
    except (ValidationError, Conflict) as err:  # said on the model's page, the form as it was
        flash(err.message, "error")
        return run_detail(run_id), err.status
    return redirect(url_for("training.evaluation_detail", run_id=run_id, evaluation_id=evaluation.id))


@bp.route("/models/<int:run_id>/evaluations/<int:evaluation_id>")
@login_required
def evaluation_detail(run_id: int, evaluation_id: int):
    evaluation = evaluations.get_evaluation_for(current_user, run_id, evaluation_id)
    return render_page("training/evaluation.html", "training/_evaluation.html", **evaluation_context(evaluation))


@bp.route("/models/<int:run_id>/evaluations/<int:evaluation_id>/cancel", methods=["POST"])
@login_required
def cancel_evaluation(run_id: int, evaluation_id: int):
    evaluation = evaluations.cancel_evaluation(current_user, run_id, evaluation_id)
    if request.htmx:
        return render_template("training/_evaluation.html", **evaluation_context(evaluation))
    return redirect(url_for("training.evaluation_detail", run_id=run_id, evaluation_id=evaluation.id))
