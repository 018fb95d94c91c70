"""Schemas every part of the API shares: the error answer, the base classes of inputs and outputs."""
from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from app.errors import ERROR_CODES


class Input(Schema):
    """A JSON body or form: an unknown field is a mistake worth reporting (additionalProperties: false)."""

    class Meta:
        unknown = RAISE


class Query(Schema):
    """A query string: unknown parameters are ignored."""

    class Meta:
        unknown = EXCLUDE


class Output(Schema):
    """An answer: dumped from rows or dicts by the same schema the document shows."""

    class Meta:
        ordered = True


class ErrorOut(Output):
    error = fields.String(required=True, metadata={"description": "What went wrong, in plain words."})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status, repeated."})
    code = fields.String(required=True, validate=validate.OneOf(list(ERROR_CODES)), metadata={
        "description": "Stable machine-readable reason (the message may be reworded; this never is): "
                       + "; ".join(f"`{code}`: {text}" for code, text in ERROR_CODES.items())})
    fields = fields.Dict(metadata={"description": "validation_error: the problem of each field (400), or of each "
                                                 "option that does not work (422, starting a run)."})


class CountOut(Output):
    count = fields.Integer(required=True, metadata={"description": "How many objects the call changed."})
