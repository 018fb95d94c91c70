"""Training runs and models. The options schema is made from TrainOptions itself, so every option the
engine knows (and the form offers) is accepted and documented, with the form's help text."""
from __future__ import annotations

import dataclasses

from marshmallow import Schema, fields, validate

from app.blueprints.api.fields import Id, StrictBoolean, StrictFloat, StrictInteger, Text, UtcDateTime
from app.blueprints.api.schemas.common import Input, Output, Query
from app.blueprints.training.forms import OPTION_HELP
from app.extensions import MAX_DB_INT
from app.ml import options as train_options
from app.ml.artifacts import DOWNLOADS, ZIP_KIND
from app.ml.networks import CATALOGUE

CHOICES = {"optimizer": "OPTIMIZERS", "schedule": "SCHEDULES", "head": "HEADS", "best_metric": "BEST_METRICS"}
NOT_OPTIONS = ("architecture", "mode")


def _option_field(option: dataclasses.Field) -> fields.Field:
    """A strict JSON field for one TrainOptions field: its type, its choices, the form's help text."""
    kind = str(option.type)
    meta = {"description": OPTION_HELP.get(option.name, ""), "default": option.default}
    nullable = "None" in kind
    choices = getattr(train_options, CHOICES.get(option.name, ""), None)
    if kind.startswith("bool"):
        return StrictBoolean(allow_none=nullable, metadata=meta)
    if kind.startswith("int"):
        return StrictInteger(allow_none=nullable, metadata=meta)
    if kind.startswith("float"):
        return StrictFloat(allow_none=nullable, metadata=meta)
    return Text(40, allow_none=nullable, validate=validate.OneOf(choices) if choices else None, metadata=meta)


TrainOptionsIn = Input.from_dict(
    {f.name: _option_field(f) for f in dataclasses.fields(train_options.TrainOptions) if f.name not in NOT_OPTIONS},
    name="TrainOptionsIn")
TrainOptionsIn.__doc__ = ("Advanced options, as on the form; leave any out for its default. Rules between "
                          "options (and per network) are checked as the form checks them: 422.")


class RunIn(Input):
    name = Text(120, min_length=1, metadata={
        "description": "Leave it out for the name the Train form suggests: dataset · mode · date."})
    architecture = fields.String(validate=validate.OneOf(sorted(CATALOGUE)), metadata={"description": (
        "The network (GET /api/v1/networks lists them). Leave it out for the one the Train form preselects "
        "for this dataset: the installed network that best suits its number of labeled images.")})
    mode = fields.String(load_default="quick", validate=validate.OneOf(train_options.MODES))
    options = fields.Nested(TrainOptionsIn, load_default=dict)


class RunQuery(Query):
    dataset = fields.Integer(validate=validate.Range(min=1, max=MAX_DB_INT), metadata={"description": "Only this dataset's."})
    status = fields.String(validate=validate.OneOf(["queued", "running", "succeeded", "failed", "cancelled"]))


class ProgressOut(Output):
    fraction = fields.Float(required=True, metadata={"description": "0 to 1."})
    phase = fields.String(required=True, allow_none=True)
    message = fields.String(required=True, allow_none=True)
    epoch = fields.Integer(required=True, allow_none=True)
    epochs = fields.Integer(required=True, allow_none=True)
    eta_seconds = fields.Float(required=True, allow_none=True)
    images_per_sec = fields.Float(required=True, allow_none=True)
    loss = fields.Float(required=True, allow_none=True)
    train_acc = fields.Float(required=True, allow_none=True)
    val_acc = fields.Float(required=True, allow_none=True)


class RunSummaryOut(Output):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    dataset_id = fields.Integer(required=True)
    status = fields.String(required=True,
                           validate=validate.OneOf(["queued", "running", "succeeded", "failed", "cancelled"]))
    finished = fields.Boolean(required=True)
    architecture = fields.String(required=True)
    mode = fields.String(required=True)
    options = fields.Dict(required=True, metadata={"description": "Every option, as used."})
    classes = fields.List(fields.String(), required=True)
    accuracy = fields.Float(required=True, allow_none=True, metadata={"description": "Test accuracy (succeeded)."})
    error = fields.String(required=True, allow_none=True)
    cancel_requested = fields.Boolean(required=True)
    public = fields.Boolean(required=True)
    threshold = fields.Float(required=True, allow_none=True)
    created_at = UtcDateTime(required=True)
    started_at = UtcDateTime(required=True, allow_none=True)
    finished_at = UtcDateTime(required=True, allow_none=True)
    downloads = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                            metadata={"description": "File kind -> URL (succeeded runs)."})


class RunOut(RunSummaryOut):
    queue_position = fields.Integer(required=True, allow_none=True,
                                    metadata={"description": "1 = next to start (queued runs)."})
    progress = fields.Nested(ProgressOut, required=True)


class RunListOut(Output):
    runs = fields.List(fields.Nested(RunSummaryOut), required=True, metadata={"description": "Newest first."})


class MetricsOut(Output):
    accuracy = fields.Float(required=True, allow_none=True)
    macro_f1 = fields.Float(required=True, allow_none=True)
    count = fields.Integer(required=True, allow_none=True, metadata={"description": "Test images."})
    classes = fields.List(fields.String(), required=True)
    confusion_matrix = fields.List(fields.List(fields.Integer()), required=True,
                                   metadata={"description": "Rows: true class, columns: predicted (class order)."})
    per_class = fields.List(fields.Dict(), required=True)
    misclassified = fields.List(fields.Dict(), required=True, metadata={"description": "Most confident first."})
    head_choice = fields.Dict(required=True, allow_none=True, metadata={"description": "Quick mode: which head won."})


class HistoryOut(Output):
    history = fields.List(fields.Dict(), required=True,
                          metadata={"description": "One row per epoch: losses, accuracies, learning rates."})


class ModelOut(Output):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    dataset_id = fields.Integer(required=True)
    architecture = fields.String(required=True)
    classes = fields.List(fields.String(), required=True)
    accuracy = fields.Float(required=True, allow_none=True)
    public = fields.Boolean(required=True)
    default = fields.Boolean(required=True, metadata={"description": "Your POST /predict uses it."})
    site_default = fields.Boolean(required=True,
                                  metadata={"description": "Anonymous POST /predict uses it."})
    created_at = UtcDateTime(required=True)
    predict_url = fields.String(required=True)


class ModelListOut(Output):
    models = fields.List(fields.Nested(ModelOut), required=True)


class ModelPatchIn(Input):
    public = StrictBoolean(metadata={"description": "Anyone may use it, with no token (editors)."})
    default = StrictBoolean(metadata={"description": "Make it (or stop it being) your default model."})
    site_default = StrictBoolean(metadata={"description": "Admins: the model anonymous /predict uses."})


class DefaultModelIn(Input):
    model_id = Id(required=True, allow_none=True, metadata={"description": "null: no default."})


class MeOut(Output):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    is_admin = fields.Boolean(required=True)
    default_model_id = fields.Integer(required=True, allow_none=True)


class NetworkOut(Output):
    name = fields.String(required=True)
    label = fields.String(required=True)
    pretrained = fields.Boolean(required=True)
    available = fields.Boolean(required=True)
    reason = fields.String(required=True, allow_none=True)
    default_image_size = fields.Integer(required=True)


class NetworkListOut(Output):
    networks = fields.List(fields.Nested(NetworkOut), required=True)


DOWNLOAD_KIND = {"type": "string", "enum": sorted([*DOWNLOADS, ZIP_KIND])}
__all__ = ["DOWNLOAD_KIND", "Schema"]
