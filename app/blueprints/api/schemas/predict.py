"""POST /predict and POST /models/{id}/predict: the prototype's contract (multipart field `file`,
repeated; one prediction per file, in upload order)."""
from __future__ import annotations

from marshmallow import fields, pre_load, validate

from app.blueprints.api.fields import Upload
from app.blueprints.api.schemas.common import Output, Query
from app.blueprints.predict.services import NO_FILE_MESSAGE
from app.errors import FILE_ERROR_CODES
from app.extensions import MAX_DB_INT

FORMAT = validate.OneOf(["json", "csv"])


class ModelId(fields.Integer):
    """A model id. Text that cannot be an id is a malformed request (400 naming the field, as a bad top_k);
    a possible id the caller may not use is left to the service's 404 unknown_model."""

    def __init__(self, **kwargs):
        super().__init__(validate=validate.Range(min=1, max=MAX_DB_INT), **kwargs)

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if value == "":  # an empty form field: use the default model
            return None
        return super().deserialize(value, attr, data, **kwargs)


def _options(with_model: bool) -> dict:
    extra = {"model": ModelId(metadata={"description": (
        "Model id; default: your default model, else your only ready model (when you have exactly one), "
        "else the site's default public model.")})} if with_model else {}
    return {"top_k": fields.Integer(validate=validate.Range(min=1), metadata={"default": 3}),
            "format": fields.String(validate=FORMAT, metadata={
                "description": "csv answers text/csv, one row per file (as does Accept: text/csv)."}),
            **extra}


class _Upload(Query):  # lenient like a query string: browsers and old scripts send extra fields
    file = fields.List(Upload(), required=True, validate=validate.Length(min=1),
                       error_messages={"required": NO_FILE_MESSAGE},
                       metadata={"description": "One or more images (repeat the field; `files` works too)."})
    error_codes = {"file": "no_file"}

    @pre_load
    def files_is_file(self, data, **kwargs):
        if "files" in data:
            data = dict(data)
            extra = data.pop("files")
            data["file"] = list(data.get("file", [])) + (extra if isinstance(extra, list) else [extra])
        return data


PredictForm = _Upload.from_dict(_options(True), name="PredictForm")
ModelPredictForm = _Upload.from_dict(_options(False), name="ModelPredictForm")
PredictQuery = Query.from_dict(_options(True), name="PredictQuery")
ModelPredictQuery = Query.from_dict(_options(False), name="ModelPredictQuery")


class ScoreOut(Output):
    category = fields.String(required=True)
    category_index = fields.Integer(required=True)
    confidence = fields.Float(required=True, validate=validate.Range(min=0, max=1))


class PredictionOut(Output):
    filename = fields.String(required=True)
    category = fields.String(allow_none=True, metadata={"description": "Best class; null below the threshold."})
    category_index = fields.Integer(allow_none=True, metadata={"description": "Its index in model.classes."})
    confidence = fields.Float(metadata={"description": "Probability of the best class."})
    unknown = fields.Boolean(metadata={"description": "True when the confidence is below the model's threshold."})
    top_k = fields.List(fields.Nested(ScoreOut))
    error = fields.String(metadata={"description": "Only for a file that could not be used (then no other field)."})
    code = fields.String(validate=validate.OneOf(FILE_ERROR_CODES), metadata={
        "description": "With `error`: bad_image (not a usable image) or over_pixel_budget (the request's images "
                       "hold too many pixels to decode at once)."})


class ModelInfoOut(Output):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    classes = fields.List(fields.String(), required=True)
    architecture = fields.String(required=True)


class PredictOut(Output):
    model = fields.Nested(ModelInfoOut, required=True)
    predictions = fields.List(fields.Nested(PredictionOut), required=True,
                              metadata={"description": "One entry per uploaded file, in upload order."})


# --- POST /models/{id}/explain ------------------------------------------------------------------

def _explain_options() -> dict:
    return {"category_index": fields.Integer(validate=validate.Range(min=0), metadata={
        "description": "The class to explain, by its index in model.classes; default: the model's answer. "
                       "An index beyond the model's classes is a 422 naming this field."})}


class _OneUpload(Query):  # lenient like a query string, as the predict forms
    file = Upload(required=True, error_messages={"required": NO_FILE_MESSAGE},
                  metadata={"description": "One image."})
    error_codes = {"file": "no_file"}


ExplainForm = _OneUpload.from_dict(_explain_options(), name="ExplainForm")
ExplainQuery = Query.from_dict(_explain_options(), name="ExplainQuery")


class CropOut(Output):
    left = fields.Float(required=True, validate=validate.Range(min=0, max=1))
    top = fields.Float(required=True, validate=validate.Range(min=0, max=1))
    width = fields.Float(required=True, validate=validate.Range(min=0, max=1))
    height = fields.Float(required=True, validate=validate.Range(min=0, max=1))


class ExplainOut(Output):
    model = fields.Nested(ModelInfoOut, required=True)
    filename = fields.String(required=True)
    category = fields.String(required=True, metadata={"description": "The class explained."})
    category_index = fields.Integer(required=True, metadata={"description": "Its index in model.classes."})
    confidence = fields.Float(required=True, validate=validate.Range(min=0, max=1), metadata={
        "description": "Its probability for the whole image."})
    grid = fields.List(fields.List(fields.Float(validate=validate.Range(min=0, max=1))), required=True, metadata={
        "description": "rows x cols importance values, 0 (did not matter) to 1 (mattered most), row by row from "
                       "the top-left of the model's crop, which they cut into equal tiles. All 0 when hiding no "
                       "part of the image lowered the class's probability."})
    rows = fields.Integer(required=True)
    cols = fields.Integer(required=True)
    crop_size = fields.Integer(required=True, metadata={
        "description": "The side of the model's square crop, in its input pixels."})
    crop = fields.Nested(CropOut, required=True, metadata={
        "description": "Where that crop lies in the uploaded picture (upright, as EXIF orientation shows it), "
                       "as fractions of the picture's width and height: draw the grid over this box."})
