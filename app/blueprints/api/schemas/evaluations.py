"""Evaluations: a trained model tested on a dataset's labeled images (nothing is trained)."""
from __future__ import annotations

from marshmallow import fields, validate

from app.blueprints.api.fields import Id, UtcDateTime
from app.blueprints.api.schemas.common import Input, Output
from app.models import Evaluation


class EvaluationIn(Input):
    dataset_id = Id(required=True, metadata={
        "description": "The dataset whose labeled images test the model: any dataset you can see (this model's "
                       "own too: its images the model was trained or validated on are left out)."})


class EvaluationCountsOut(Output):
    evaluated = fields.Integer(required=True, metadata={
        "description": "Images tested (before the evaluation has finished: those to test). While `exact` is false, "
                       "the most that can be tested: the images the model learned from are not counted yet."})
    unlabeled = fields.Integer(required=True, metadata={"description": "Left out: no class."})
    unknown_class = fields.Integer(required=True, metadata={"description": "Left out: a class the model does not "
                                                                           "know (matched by name, any case)."})
    learned = fields.Integer(required=True, metadata={"description": "Left out: the model was trained or "
                                                                     "validated on them (same content). 0 while "
                                                                     "`exact` is false: not counted yet."})
    unreadable = fields.Integer(required=True, metadata={"description": "Left out: the file could not be read."})
    unknown_classes = fields.List(fields.String(), required=True,
                                  metadata={"description": "The classes the model does not know (the first 20)."})
    exact = fields.Boolean(required=True, metadata={
        "description": "False while queued when counting the images the model learned from was left to the job "
                       "(a model trained on many images): `evaluated` is then an upper bound and `learned` 0. "
                       "The job counts both exactly when it starts; once it has, always true."})


class EvaluationProgressOut(Output):
    done = fields.Integer(required=True)
    total = fields.Integer(required=True)


class EvaluationOut(Output):
    id = fields.Integer(required=True)
    run_id = fields.Integer(required=True)
    dataset_id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(Evaluation.STATUSES))
    finished = fields.Boolean(required=True)
    progress = fields.Nested(EvaluationProgressOut, required=True)
    counts = fields.Nested(EvaluationCountsOut, required=True)
    error = fields.String(required=True, allow_none=True, metadata={"description": "Why it failed."})
    accuracy = fields.Float(required=True, allow_none=True)
    accuracy_ci95 = fields.List(fields.Float(), required=True, allow_none=True,
                                metadata={"description": "The 95% Wilson interval of the accuracy: [low, high]."})
    classes = fields.List(fields.String(), required=True, metadata={"description": "The model's classes."})
    confusion_matrix = fields.List(fields.List(fields.Integer()), required=True, allow_none=True, metadata={
        "description": "Rows: true class, columns: predicted (the model's class order). Succeeded only."})
    per_class = fields.List(fields.Dict(), required=True, allow_none=True,
                            metadata={"description": "precision, recall, f1, support per class."})
    misclassified = fields.List(fields.Dict(), required=True, allow_none=True, metadata={
        "description": "The most confident mistakes (at most 200), most confident first: image_id, true, "
                       "predicted, confidence."})
    created_at = UtcDateTime(required=True)
    started_at = UtcDateTime(required=True, allow_none=True)
    finished_at = UtcDateTime(required=True, allow_none=True)
