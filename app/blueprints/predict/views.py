"""Routes: the JSON prediction API, the 'Try it' page, API tokens."""
import time
from typing import TYPE_CHECKING

from flask import Response, after_this_request, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_babel import gettext as _

from app.activity import record_predictions
from app.blueprints.predict import bp, explanations, services, tokens as token_service
from app.blueprints.api.contract import Op, operation
from app.blueprints.api.schemas.predict import (ExplainForm, ExplainOut, ExplainQuery, ModelPredictForm,
                                               ModelPredictQuery, PredictForm, PredictOut, PredictQuery)
from app.errors import DomainError
from app.extensions import csrf
from app.rate_limits import limit_by_ip, limit_predictions
from app.rendering import render_page

if TYPE_CHECKING:
    from app.serving import Timings, Upload


CSV = {"text/csv": {"schema": {"type": "string"}, "example": (
    "filename,category,category_index,confidence,unknown,error\r\ncat1.jpg,cat,0,0.973214,false,\r\n"
    "notes.txt,,,,,Not an image.\r\n")}}
PREDICT_HELP = ("Send images as repeated multipart `file` fields. A file that is not a usable image gets an "
                "entry with only `filename` and `error`; the others an answer. model, top_k and format may be "
                "form fields or query parameters. A `Server-Timing` header says where the time went, in "
                "milliseconds: body (reading and parsing the upload), decode, queue (waiting for the model), "
                "forward (the batch your images ran in, shared with other requests) and app (all of it on the "
                "server).")


def _uploads(data: dict) -> list["Upload"]:
    from app.serving import Upload  # numpy: loaded by the first prediction, not at start-up

    return [Upload(f.filename or f"file{i + 1}", f.read()) for i, f in enumerate(data["file"])]


TIMED = {"predict.predict_images", "predict.predict_with_model"}


@bp.before_request
def _note_start():
    g.predict_started = time.perf_counter()
    if request.endpoint in TIMED:
        request.files  # read and parse the body here (the view would), to time it apart
        g.predict_body = time.perf_counter() - g.predict_started


def _server_timing() -> "Timings":
    """Where this request's time goes, sent back as a Server-Timing header (browsers' developer tools
    show it; bench/predict.py reads it to find the tail): reading the body, decode, queue, forward, and
    the total spent in the app (the rest of a client's wait is the network and the HTTP server)."""
    from app.serving import Timings

    timings = Timings(body=g.get("predict_body", 0.0))

    @after_this_request
    def send(response):
        total = time.perf_counter() - g.get("predict_started", time.perf_counter())
        response.headers["Server-Timing"] = f"{timings.header()}, app;dur={total * 1000:.1f}"
        return response

    return timings


def _answer(result: dict, fmt: str, user=None):
    """JSON (the default) or CSV, one row per file; errors stay JSON either way. The images are counted
    for the admin's usage overview."""
    record_predictions(user.id if user is not None else None, request.remote_addr, len(result["predictions"]))
    if fmt != "csv":
        return result
    name = f"predictions-model-{result['model']['id']}.csv"
    return Response(services.predictions_csv(result), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _op(summary: str, form, query) -> Op:
    return Op(summary, "Prediction", query=query, form=form, out=PredictOut, auth="optional", files=CSV,
              errors=(409, 413, 422), description=PREDICT_HELP)


@bp.route("/predict", methods=["POST"])
@csrf.exempt  # token calls carry no CSRF token; api_user() checks session calls itself
@limit_predictions()
@operation(_op("Classify images with the chosen or default model", PredictForm, PredictQuery))
def predict_images(user, data):
    fmt = services.parse_format(data.get("format"), request.accept_mimetypes)
    result = services.predict_files(user, _uploads(data), data.get("model"), data.get("top_k"), _server_timing())
    return _answer(result, fmt, user)


@bp.route("/models/<int:run_id>/predict", methods=["POST"])
@csrf.exempt
@limit_predictions()
@operation(_op("Classify images with one model", ModelPredictForm, ModelPredictQuery))
def predict_with_model(user, data, run_id: int):
    fmt = services.parse_format(data.get("format"), request.accept_mimetypes)
    result = services.predict_files(user, _uploads(data), run_id, data.get("top_k"), _server_timing())
    return _answer(result, fmt, user)


# An explanation runs ~50 forward passes for one upload: it spends 10 images of the prediction budget, so an
# anonymous visitor (300 images a minute by default) gets 30 a minute, not 300 (15,000 forward passes).
EXPLAIN_COST = 10

EXPLAIN_HELP = ("Which parts of one image the model's answer rests on (occlusion sensitivity): a grey square "
                "is slid over the image and the class's probability measured each time, about 50 forward "
                "passes, so one call costs about as much as classifying 50 images. The grid covers the model's "
                "centre crop (the middle of the picture, 87.5% of its shorter side, as the model sees it), "
                "which `crop` locates in the picture. Send one multipart `file`; `category_index` (form field "
                "or query parameter) picks the class to explain. A file that is not a usable image is a 422 "
                f"with code `bad_image`. Counts as {EXPLAIN_COST} images in the prediction rate limits.")


@bp.route("/models/<int:run_id>/explain", methods=["POST"])
@csrf.exempt  # as /predict: api_user() checks session calls itself
@limit_predictions(per_file=EXPLAIN_COST)
@operation(Op("Show which parts of an image mattered for the answer", "Prediction", query=ExplainQuery,
              form=ExplainForm, out=ExplainOut, auth="optional", errors=(409, 413, 422), description=EXPLAIN_HELP))
def explain_image(user, data, run_id: int):
    from app.serving import Upload

    upload = Upload(data["file"].filename or "file1", data["file"].read())
    result = explanations.explain_upload(user, upload, run_id, data.get("category_index"))
    record_predictions(user.id if user is not None else None, request.remote_addr, 1)
    return result


@bp.route("/models/<int:run_id>/try")
def try_model(run_id: int):
    user = current_user if current_user.is_authenticated else None
    context = services.page_context(user, run_id)
    return render_template("predict/try.html", **context)


@bp.route("/models/<int:run_id>/try/public", methods=["POST"])
@login_required
def set_public(run_id: int):
    public = request.form.get("public") == "1"
    run = services.set_public(current_user, run_id, public)
    flash(_("“%(name)s” is now public: anyone can use it.", name=run.name) if public else
          _("“%(name)s” is now private.", name=run.name), "success")
    return redirect(url_for("predict.try_model", run_id=run_id))


@bp.route("/models/<int:run_id>/try/default", methods=["POST"])
@login_required
def set_default(run_id: int):
    run = services.set_user_default(current_user, run_id if request.form.get("use") == "1" else None)
    flash(_("POST /predict now uses “%(name)s” for you.", name=run.name) if run else
          _("You have no default model now."), "success")
    return redirect(url_for("predict.try_model", run_id=run_id))


@bp.route("/models/<int:run_id>/try/instance-default", methods=["POST"])
@login_required
def set_instance_default(run_id: int):
    run = services.set_instance_default(current_user, run_id if request.form.get("use") == "1" else None)
    flash(_("Anonymous POST /predict now uses “%(name)s”.", name=run.name) if run else
          _("The site has no default model now."), "success")
    return redirect(url_for("predict.try_model", run_id=run_id))


def _tokens_page(status: int = 200, **extra):
    items = token_service.list_tokens(current_user.id)
    models = services.example_models(current_user)
    return render_page("predict/tokens.html", "predict/_tokens.html", status, tokens=items, models=models, **extra)


@bp.route("/tokens")
@login_required
def tokens():
    return _tokens_page()


@bp.route("/tokens", methods=["POST"])
@login_required
@limit_by_ip("RATELIMIT_TOKENS")
def create_token():
    try:
        token, plain = token_service.create_token(current_user.id, request.form.get("name", ""))
    except DomainError as err:
        return _tokens_page(err.status, error=err.message, name=request.form.get("name", ""))
    return _tokens_page(new_token=plain, new_token_name=token.name)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int):
    token = token_service.revoke_token(current_user.id, token_id)
    if not request.htmx:
        flash(_("Token “%(name)s” is revoked; scripts using it are refused from now on.", name=token.name), "success")
        return redirect(url_for("predict.tokens"))
    return _tokens_page(revoked=token.name)
