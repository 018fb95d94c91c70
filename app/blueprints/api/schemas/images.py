"""Images of a dataset: the keyset-paged list, uploads, background imports, bulk labels and deletes."""
from __future__ import annotations

from marshmallow import fields, pre_load, validate

from app.blueprints.api.fields import Id, Text, Upload, UtcDateTime
from app.blueprints.api.schemas.common import Input, Output, Query
from app.blueprints.datasets.images.services import MAX_QUERY, MAX_SELECTION
from app.extensions import MAX_DB_INT

MAX_PAGE = 500
CURSOR = validate.Range(min=0, max=MAX_DB_INT)


class ImageQuery(Query):
    label = fields.String(data_key="class", load_default="all",
                          validate=validate.Regexp(r"^(all|unlabeled|[0-9]{1,18})$"),
                          metadata={"description": "'all', 'unlabeled' or a class id."})
    before = fields.Integer(validate=CURSOR, metadata={
        "description": "Images older than this id: the `older` cursor of the previous answer."})
    after = fields.Integer(validate=CURSOR, metadata={
        "description": "The page just newer than this id: the `newer` cursor of an answer."})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    q = Text(MAX_QUERY, load_default="", metadata={
        "description": "Only images whose file name contains this text, in any case (`%` and `_` are plain "
                       "characters; spaces around it are ignored; empty: no search). Combines with `class`; "
                       "pass it again with `before` / `after`."})


class ImageOut(Output):
    id = fields.Integer(required=True)
    filename = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    format = fields.String(required=True)
    size_bytes = fields.Integer(required=True)
    class_id = fields.Integer(required=True, allow_none=True, attribute="label_id")
    label_source = fields.String(required=True, allow_none=True,
                                 metadata={"description": "'user', 'import' (a zip folder) or 'suggestion'."})
    created_at = UtcDateTime(required=True)


class ImagePageOut(Output):
    images = fields.List(fields.Nested(ImageOut), required=True, metadata={"description": "Newest first."})
    total = fields.Integer(required=True, metadata={"description": "Images matching the filter (and `q`)."})
    older = fields.Integer(required=True, allow_none=True,
                           metadata={"description": "Pass as `before` for the next (older) page; null at the end."})
    newer = fields.Integer(required=True, allow_none=True,
                           metadata={"description": "Pass as `after` for the previous page; null on the first."})


class UploadForm(Input):
    files = fields.List(Upload(), required=True, validate=validate.Length(min=1), metadata={
        "description": "Images, or zips with one folder per class (repeat the field; `file` works too)."})
    class_id = fields.Integer(validate=validate.Range(min=1, max=MAX_DB_INT), metadata={
        "description": "A class of this dataset: the images are added to it (not with a zip, whose folders "
                       "give its classes). Left out: the images stay unlabeled."})
    error_codes = {"files": "no_file"}

    @pre_load
    def file_is_files(self, data, **kwargs):
        """`file` (as /predict calls it) is accepted too."""
        if "file" in data:
            data = dict(data)
            extra = data.pop("file")
            data["files"] = list(data.get("files", [])) + (extra if isinstance(extra, list) else [extra])
        return data


class FileResultOut(Output):
    filename = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["added", "duplicate", "error"]))
    message = fields.String(required=True)
    label = fields.String(required=True, allow_none=True)
    image_id = fields.Integer(required=True, allow_none=True)


class ImportErrorOut(Output):
    filename = fields.String(required=True)
    message = fields.String(required=True, metadata={"description": "Why the file could not be used (English)."})


class ImportOut(Output):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["zip", "files", "folder", "labels"]), metadata={
        "description": "'labels': a CSV of labels applied to the dataset's images (POST .../labels)."})
    source = fields.String(required=True)
    status = fields.String(required=True,
                           validate=validate.OneOf(["queued", "running", "finished", "failed", "cancelled"]))
    total = fields.Integer(required=True)
    processed = fields.Integer(required=True)
    added = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)
    error_count = fields.Integer(required=True)
    errors = fields.List(fields.Nested(ImportErrorOut), required=True, metadata={"description": "The first 50."})
    message = fields.String(required=True, allow_none=True)
    cancel_requested = fields.Boolean(required=True)
    created_at = fields.String(required=True, allow_none=True)
    started_at = fields.String(required=True, allow_none=True)
    finished_at = fields.String(required=True, allow_none=True)
    status_url = fields.String(required=True, metadata={"description": "GET it (with your token) to follow it."})
    cancel_url = fields.String(metadata={"description": "POST to stop it; only while it runs."})
    page_url = fields.String(required=True)


class ImportListOut(Output):
    imports = fields.List(fields.Nested(ImportOut), required=True)


class UploadOut(Output):
    summary = fields.String(required=True)
    results = fields.List(fields.Nested(FileResultOut), required=True,
                          metadata={"description": "Files handled at once (and zips refused as a whole)."})
    imports = fields.List(fields.Nested(ImportOut), required=True,
                          metadata={"description": "Background imports started (a zip, or many files)."})


class LabelIn(Input):
    image_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=MAX_SELECTION))
    class_id = Id(required=True, allow_none=True, metadata={"description": "null: unlabel them."})


class ImageIdsIn(Input):
    image_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=MAX_SELECTION))


class LabelsCsvForm(Input):
    file = Upload(required=True, metadata={
        "description": "A CSV (UTF-8): a file-name column (file, filename, image, id, path...) and a class "
                       "column (label, class, category, target), else the first two columns."})
    error_codes = {"file": "no_file"}


class LabelsOut(Output):
    rows = fields.Integer(required=True, metadata={"description": "Rows of labels read."})
    labeled = fields.Integer(required=True, metadata={"description": "Images given their class."})
    unmatched = fields.Integer(required=True, metadata={"description": "Rows whose file matched no image."})
    ambiguous = fields.Integer(required=True,
                               metadata={"description": "File names several images hold (none labeled)."})
    classes_created = fields.Integer(required=True)
    conflicts = fields.Integer(required=True,
                               metadata={"description": "Files listed again with another class (not labeled)."})
    empty_rows = fields.Integer(required=True, metadata={"description": "Rows with no file name or class."})
    message = fields.String(required=True, metadata={"description": "The same, in words (English)."})


class LabelsStartedOut(Output):
    import_ = fields.Nested(ImportOut, required=True, data_key="import",
                            metadata={"description": "The background labeling: follow its status_url."})
