"""Datasets, their classes and shares."""
from __future__ import annotations

from marshmallow import fields, validate

from app.blueprints.api.fields import Text, UtcDateTime
from app.blueprints.api.schemas.common import Input, Output
from app.blueprints.api.schemas.images import ImportOut

COLOR = validate.Regexp(r"^#[0-9a-fA-F]{6}$", error="Pick a colour like #4f7cff.")


class DatasetIn(Input):
    name = Text(120, required=True, min_length=1)
    description = Text(2000, load_default="")


class DatasetPatchIn(Input):
    name = Text(120, min_length=1)
    description = Text(2000)


class DatasetOut(Output):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    owner = fields.String(required=True, metadata={"description": "The owner's username."})
    role = fields.String(required=True, validate=validate.OneOf(["owner", "editor", "viewer"]),
                         metadata={"description": "Your role: what you may do with it."})
    images = fields.Integer(required=True, metadata={"description": "How many images it holds."})
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class DatasetListOut(Output):
    datasets = fields.List(fields.Nested(DatasetOut), required=True)


class ClassOut(Output):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    color = fields.String(required=True)
    position = fields.Integer(required=True, metadata={"description": "Order of the classes (1 first)."})
    images = fields.Integer(required=True)


class ClassListOut(Output):
    classes = fields.List(fields.Nested(ClassOut), required=True)
    unlabeled = fields.Integer(required=True)


class DatasetDetailOut(DatasetOut):
    classes = fields.List(fields.Nested(ClassOut), required=True)
    unlabeled = fields.Integer(required=True)
    missing = fields.List(fields.String(), required=True, metadata={
        "description": "What stops training with the default settings, in plain language (the list the Train "
                       "page shows; starting a run says the same); empty when a model can be trained."})
    warnings = fields.List(fields.String(), required=True,
                           metadata={"description": "Plain-language advice: training can start despite these."})
    imports = fields.List(fields.Nested(ImportOut), required=True,
                          metadata={"description": "Running imports and those that ended in the last day."})


class ClassIn(Input):
    name = Text(80, required=True, min_length=1)
    color = fields.String(validate=COLOR)


class ClassPatchIn(Input):
    name = Text(80, min_length=1)
    color = fields.String(validate=COLOR)
    move = fields.String(validate=validate.OneOf(["up", "down"]),
                         metadata={"description": "Move the class one place up or down the order."})


class MergeIn(Input):
    into = fields.Integer(required=True, validate=validate.Range(min=1, max=2**63 - 1), metadata={
        "description": "The id of the class (of the same dataset) the images move into."})


class MergeOut(Output):
    moved = fields.Integer(required=True, metadata={"description": "How many images moved."})
    into = fields.Nested(ClassOut, required=True, metadata={"description": "The class they are in now."})


class ShareIn(Input):
    username = Text(40, required=True, min_length=1)
    role = fields.String(required=True, validate=validate.OneOf(["viewer", "editor"]))


class OwnerIn(Input):
    username = Text(40, required=True, min_length=1, metadata={
        "description": "The account that becomes the owner; you keep an editor share."})


class ShareOut(Output):
    id = fields.Integer(required=True)
    username = fields.String(required=True, attribute="user.username")
    role = fields.String(required=True)
    created_at = UtcDateTime(required=True)


class ShareListOut(Output):
    shares = fields.List(fields.Nested(ShareOut), required=True)


class DeletedOut(Output):
    id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "'deleting': gone now, files removed "
                                                                   "in the background."})

