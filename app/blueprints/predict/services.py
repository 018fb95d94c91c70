"""Inference logic: which model answers, who may use it, and the JSON the API returns."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from flask import current_app
from flask_babel import gettext as _

from app.access import NotAllowed, get_run_for, visible_runs_query
from app.blueprints.predict.tokens import Unauthorized
from app.errors import Conflict, DomainError, NotFound, ValidationError
from app.i18n import N_
from app.extensions import db
from app.filestore import run_prefix
from app.ml.artifacts import CARD, CHECKPOINT
from app.models import Setting, TrainingRun, User
from app.storage import get_storage

if TYPE_CHECKING:
    from app.serving import Timings, Upload

INSTANCE_DEFAULT_KEY = "default_model_id"
MISSING = N_("This model does not exist, or you do not have access to it.")
UNKNOWN_MODEL = "unknown_model"
NO_FILE_MESSAGE = N_("No image received. Send one or more files in the 'file' field.")


def _missing() -> str:
    return _(MISSING)


def _is_user(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def get_usable_run(user: User | None, run_id: int) -> TrainingRun:
    """A run the user may predict with: public, or visible to them. Others' private runs, and models being
    deleted (even public ones), are a 404."""
    run = db.session.get(TrainingRun, run_id)
    if run is None or run.deleting:
        raise NotFound(_missing(), code=UNKNOWN_MODEL)
    if not run.is_public:
        if not _is_user(user):
            raise NotFound(_missing() + " " + _("If it is yours, log in or send your API token."), code=UNKNOWN_MODEL)
        try:
            get_run_for(user, run_id, "viewer")
        except NotFound:
            raise NotFound(_missing(), code=UNKNOWN_MODEL) from None
    return run


def model_folder(run: TrainingRun) -> Path:
    """The local folder of a model's files: in storage, or with a bucket this process's cached copy
    (fetched once; later calls only check the copy is still there)."""
    return get_storage().local_dir(run_prefix(run.id), skip=(CHECKPOINT,))


def require_ready(run: TrainingRun) -> TrainingRun:
    """The run must have finished training with its files in storage."""
    if run.status == "queued":
        raise Conflict(_("Model “%(name)s” cannot answer yet: its training is queued.", name=run.name),
                       code="not_ready")
    if run.status == "running":
        raise Conflict(_("Model “%(name)s” cannot answer yet: its training is running.", name=run.name),
                       code="not_ready")
    if run.status == "cancelled":  # it never will: "yet" would promise otherwise
        raise Conflict(_("Model “%(name)s” cannot answer: its training was cancelled. Retry it, or use another "
                         "model.", name=run.name), code="not_ready")
    if run.status != "succeeded":
        raise Conflict(_("Model “%(name)s” cannot answer: its training failed. Retry it, or use another model.",
                         name=run.name), code="not_ready")
    if not run.artifact_dir or not (model_folder(run) / CARD).exists():
        raise Conflict(_("The files of model “%(name)s” are missing. Train it again.", name=run.name),
                       code="not_ready")
    return run


def instance_default_id() -> int | None:
    """The id of the model anonymous POST /predict uses, if an admin chose one."""
    setting = db.session.get(Setting, INSTANCE_DEFAULT_KEY)
    return int(setting.value) if setting is not None and setting.value is not None else None


def _usable_or_none(user: User | None, run_id: int | None) -> TrainingRun | None:
    if run_id is None:
        return None
    try:
        return get_usable_run(user, run_id)
    except DomainError:  # a deleted or no-longer-shared default is simply skipped
        return None


def ready_models(user: User, limit: int | None = None) -> list[TrainingRun]:
    """Succeeded models on the datasets the user can see, newest first (the API page's examples)."""
    query = (visible_runs_query(user).where(TrainingRun.status == "succeeded", TrainingRun.artifact_dir.is_not(None))
             .order_by(TrainingRun.id.desc()).limit(limit))
    return list(db.session.scalars(query))


def example_models(user: User, limit: int = 10) -> list[TrainingRun]:
    """The models the API page's examples name: the user's default model first when it can answer (a
    call without 'model' uses it), then the newest others."""
    models = ready_models(user, limit)
    default = _usable_or_none(user, user.default_model_id)
    if default is None or default.status != "succeeded" or not default.artifact_dir:
        return models
    return [default] + [m for m in models if m.id != default.id][:limit - 1]


def _only_ready_model(user: User) -> TrainingRun | None:
    """The user's one ready model when there is exactly one (then it needs no choosing)."""
    runs = ready_models(user, limit=2)
    return runs[0] if len(runs) == 1 else None


def _no_model_message(user: User) -> str:
    runs = ready_models(user, limit=3)
    if not runs:
        return _("No model chosen, and you have no trained model yet. Train one first, then send its id in "
                 "the 'model' field.")
    ids = ", ".join(str(r.id) for r in runs)
    return _("No model chosen: you have several models. Send a 'model' field with a model id (e.g. %(ids)s), "
             "or pick a default model on a model's 'Try it' page.", ids=ids)


def resolve_model(user: User | None, run_id: int | None) -> TrainingRun:
    """The explicit model, else the user's default, else the user's only ready model, else the instance
    default (public only)."""
    if run_id is not None:
        return require_ready(get_usable_run(user, run_id))
    run = _usable_or_none(user, user.default_model_id) if _is_user(user) else None
    if run is None and _is_user(user):
        run = _only_ready_model(user)
    if run is None:
        candidate = _usable_or_none(None, instance_default_id())
        run = candidate if candidate is not None and candidate.is_public else None
    if run is None:
        if not _is_user(user):
            raise Unauthorized(_("Log in or send an API token (Authorization: Bearer ...), "
                                 "or choose a public model with the 'model' field."))
        # 422, not 400: the request is well formed; this account just has no default model to use
        raise ValidationError(_no_model_message(user), code="no_model")
    return require_ready(run)


def parse_top_k(raw: str | None, n_classes: int) -> int:
    """k for the top-k list: default 3, at most the number of classes."""
    if raw in (None, ""):
        return min(3, n_classes)
    try:
        k = int(raw)
    except (TypeError, ValueError):
        raise DomainError(_("top_k must be a whole number, e.g. 3."), 400, "validation_error") from None
    if k < 1:
        raise DomainError(_("top_k must be at least 1."), 400, "validation_error")
    return min(k, n_classes)


def model_info(run: TrainingRun, classes: Sequence[str]) -> dict:
    return {"id": run.id, "name": run.name, "classes": list(classes), "architecture": run.architecture}


def _ranked(probs, classes: Sequence[str], k: int) -> list[dict]:
    """The k most likely classes, best first; equal confidences keep class order (as argmax does)."""
    from app.ml.inference import top_k  # torch is loaded anyway once a model answers

    return [{"category": label, "category_index": index, "confidence": confidence}
            for label, index, confidence in top_k(probs, k, classes)]


def prediction_entry(filename: str, probs, classes: Sequence[str], k: int, threshold: float | None) -> dict:
    """One answer: best class, confidence, top-k; category None + unknown when below the threshold."""
    top = _ranked(probs, classes, k)
    best = top[0]
    unknown = threshold is not None and best["confidence"] < threshold
    return {
        "filename": filename,
        "category": None if unknown else best["category"],
        "category_index": None if unknown else best["category_index"],
        "confidence": best["confidence"],
        "unknown": unknown,
        "top_k": top,
    }


def loaded_predictor(run: TrainingRun):
    """The run's model, loaded in this process (the cache's copy when it has one)."""
    from app import serving

    config = current_app.config
    placement = serving.Placement(config.get("PREDICT_DEVICE") or None, config["PREDICT_THREADS"],
                                  config.get("PREDICT_PRECISION", "fp32"))
    return serving.get_predictor(run.id, model_folder(run), config["MODEL_CACHE_SIZE"], placement,
                                 freeze_heap=config["PREDICT_FREEZE_HEAP"])


def predict_files(user: User | None, uploads: Sequence[Upload], run_id: int | None = None,
                  top_k: str | None = None, timings: Timings | None = None) -> dict:
    """Answer a batch of uploads with one model, in upload order; bad files get an error entry.
    timings, when given, records where the time went (serving.Timings)."""
    from app import serving  # numpy and the model cache: loaded by the first prediction, not at start-up

    config = current_app.config
    if not uploads:
        raise DomainError(_(NO_FILE_MESSAGE), 400, "no_file")
    if len(uploads) > config["PREDICT_MAX_FILES"]:
        raise DomainError(_("Too many files: at most %(limit)s per request.", limit=config["PREDICT_MAX_FILES"]),
                          413,
                          "too_many_files")
    run = resolve_model(user, run_id)
    predictor = loaded_predictor(run)
    classes = list(predictor.classes)
    k = parse_top_k(top_k, len(classes))
    limits = serving.Limits(config["MAX_IMAGE_PIXELS"], config["PREDICT_MAX_REQUEST_PIXELS"])
    decoded, probs = serving.predict_uploads(predictor, uploads, limits, config["PREDICT_MAX_BATCH"], timings)
    answers, row = [], 0
    for item in decoded:
        if item.error is not None:
            answers.append({"filename": item.filename, "error": item.error, "code": item.code})
            continue
        answers.append(prediction_entry(item.filename, probs[row], classes, k, run.threshold))
        row += 1
    return {"model": model_info(run, classes), "predictions": answers}


CSV_COLUMNS = ("filename", "category", "category_index", "confidence", "unknown", "error")


def parse_format(raw: str | None, accept) -> str:
    """'csv' or 'json': the format field wins; else text/csv when the Accept header asks for it explicitly
    at least as much as JSON (a bare */* keeps JSON)."""
    if raw not in (None, ""):
        if raw.lower() not in ("csv", "json"):
            raise DomainError(_("format must be 'json' or 'csv'."), 400, "validation_error")
        return raw.lower()
    explicit = any(value == "text/csv" for value, _ in accept)
    return "csv" if explicit and accept.quality("text/csv") >= accept.quality("application/json") else "json"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (names come from uploads and users)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def predictions_csv(result: dict) -> str:
    """The answer of predict_files as CSV: a header row, then one row per file in upload order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in result["predictions"]:
        filename = spreadsheet_safe(entry["filename"])
        if "error" in entry:
            writer.writerow([filename, "", "", "", "", entry["error"]])
            continue
        writer.writerow([filename, spreadsheet_safe(entry["category"] or ""),
                         "" if entry["category_index"] is None else entry["category_index"],
                         f"{entry['confidence']:.6f}", "true" if entry["unknown"] else "false", ""])
    return out.getvalue()


# --- model settings on the "Try it" page ------------------------------------------------------

def set_public(user: User, run_id: int, public: bool) -> TrainingRun:
    """Owners and editors of the model's dataset may let anyone use it (no token needed)."""
    run = get_run_for(user, run_id, "editor")
    if public:
        require_ready(run)
    run.is_public = bool(public)
    if not public and instance_default_id() == run.id:
        db.session.delete(db.session.get(Setting, INSTANCE_DEFAULT_KEY))
    db.session.commit()
    return run


def set_user_default(user: User, run_id: int | None) -> TrainingRun | None:
    """The model POST /predict uses for this user when no model is named (None clears it)."""
    run = require_ready(get_usable_run(user, run_id)) if run_id is not None else None
    user.default_model_id = run.id if run else None
    db.session.commit()
    return run


def set_instance_default(user: User, run_id: int | None) -> TrainingRun | None:
    """Admins choose the public model anonymous POST /predict uses (None clears it)."""
    if not (_is_user(user) and user.is_admin):
        raise NotAllowed(_("Only an administrator can choose the default model of this site."))
    run = None
    if run_id is not None:
        run = require_ready(get_usable_run(user, run_id))
        if not run.is_public:
            raise Conflict(_("Make the model public first: anonymous visitors will use it."))
    setting = db.session.get(Setting, INSTANCE_DEFAULT_KEY) or Setting(key=INSTANCE_DEFAULT_KEY)
    setting.value = run.id if run else None
    db.session.add(setting)
    db.session.commit()
    return run


def page_context(user: User | None, run_id: int) -> dict:
    """What the 'Try it' page shows: the model and which buttons the visitor may use."""
    run = get_usable_run(user, run_id)
    can_edit = False
    if _is_user(user):
        try:
            get_run_for(user, run_id, "editor")
            can_edit = True
        except DomainError:
            pass
    return {
        "run": run,
        "ready": run.status == "succeeded" and bool(run.artifact_dir),
        "can_edit": can_edit,
        "is_user_default": _is_user(user) and user.default_model_id == run.id,
        "is_instance_default": instance_default_id() == run.id,
        "is_admin": _is_user(user) and user.is_admin,
    }
