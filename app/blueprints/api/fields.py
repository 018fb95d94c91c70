"""Schema fields that accept exactly what the OpenAPI document says they accept.

marshmallow's own fields are lenient ("3" passes as an integer, "yes" as a boolean): a JSON body that
breaks the documented types must be refused, so JSON bodies use these strict fields. Query strings and
form fields are text by nature and use marshmallow's converting fields."""
from __future__ import annotations

import numbers
from datetime import datetime

from marshmallow import fields, validate

from app.extensions import MAX_DB_INT

NO_NUL = validate.Regexp(r"^[^\x00]*$", error="Text cannot contain NUL characters.")


class StrictInteger(fields.Integer):
    """A JSON integer: not a string, not a boolean, not a float."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictFloat(fields.Float):
    """A JSON number (integers are numbers too): not a string, not a boolean."""

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """A JSON true or false, nothing that merely looks like one."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class UtcDateTime(fields.DateTime):
    """Our naive UTC datetimes, written as RFC 3339 with a Z."""

    def _serialize(self, value: datetime | None, attr, obj, **kwargs):
        return None if value is None else value.isoformat(timespec="seconds") + "Z"


class Upload(fields.Field):
    """One uploaded file of a multipart/form-data request (documented as a binary string)."""

    default_error_messages = {"invalid": "Not a file: send it as a file part of a multipart/form-data body."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not hasattr(value, "stream"):
            raise self.make_error("invalid")
        return value


def Text(max_length: int | None = None, min_length: int | None = None, **kwargs) -> fields.String:  # noqa: N802
    """A string without NUL characters (PostgreSQL cannot store them), of a bounded length."""
    checks = [NO_NUL]
    if max_length or min_length:
        checks.append(validate.Length(min=min_length, max=max_length))
    if kwargs.get("validate") is not None:
        checks.append(kwargs["validate"])
    kwargs["validate"] = checks
    return fields.String(**kwargs)


def Id(**kwargs) -> StrictInteger:  # noqa: N802
    """An object id in a JSON body."""
    return StrictInteger(validate=validate.Range(min=1, max=MAX_DB_INT), **kwargs)
