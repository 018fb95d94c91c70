"""API: a dataset's images (upload, keyset-paged list, bulk label and delete, files) and its imports."""
from contextlib import contextmanager

from flask import send_file
from flask_babel import gettext as _

from app.access import get_dataset_for
from app.blueprints.api import bp, present
from app.blueprints.api.contract import Op, operation
from app.blueprints.api.schemas.common import CountOut
from app.blueprints.api.schemas.images import (
    ImageIdsIn, ImageOut, ImagePageOut, ImageQuery, ImportListOut, ImportOut, LabelIn, LabelsCsvForm, LabelsOut,
    LabelsStartedOut, UploadForm, UploadOut,
)
from app.blueprints.datasets.images.csv_labels import label_from_csv
from app.blueprints.datasets.images import imports as import_service
from app.blueprints.datasets.images.intake import clean_filename
from app.blueprints.datasets.images.services import (
    Cursor, NotInDataset, delete_images, get_image, image_page, set_labels,
)
from app.blueprints.datasets.images.uploads import upload_files
from app.rate_limits import api_caller, rate_limit
from app.errors import NotFound
from app.request_limits import allow_large_upload
from app.filestore import image_key
from app.storage import get_storage

TAG, IMPORTS = "Images", "Imports"
UPLOAD_HELP = ("Up to SYNC_UPLOAD_MAX_FILES loose images are added at once (200, one result per file). A zip "
               "(one folder per class) or more loose images start a background import (202): follow its "
               "`status_url`. A zip refused as a whole gets its reason in `results`. With `class_id` (a class of "
               "this dataset) the images are added to that class; a class of another dataset, or one that "
               "does not exist, is 404 and nothing is stored; a class given with a zip is 422.")
LABELS_HELP = ("Rows match the dataset's images by file name, with or without the extension; a name several "
               "images hold is ambiguous and labels none. Classes are created as needed. A CSV that is not "
               "UTF-8 text, has no rows, has one column, is over LABELS_CSV_MAX_BYTES, or has no header known "
               "(e.g. `filename,label`) and no row that names an image is refused (422), nothing changed. "
               "Small ones are applied at once (200, the counts); larger ones in the background (202).")
IMAGE_FILE = {"image/*": {"schema": {"type": "string", "format": "binary"}}}


@bp.get("/v1/datasets/<int:dataset_id>/images")
@operation(Op("List images, newest first, a page at a time (by key)", TAG, query=ImageQuery, out=ImagePageOut,
              description="Follow `older` (as `before`) to the next page; `class` filters by class id or "
                          "'unlabeled', `q` finds file names that contain a text. Every page costs the same, "
                          "however deep."))
def list_images(user, data, dataset_id: int):
    dataset = get_dataset_for(user, dataset_id)
    page = image_page(dataset.id, data["label"], Cursor(data.get("before"), data.get("after")),
                      per_page=data["limit"], q=data["q"])
    return {"images": page.images, "total": page.total, "older": page.older, "newer": page.newer}


@bp.post("/v1/datasets/<int:dataset_id>/images")
@allow_large_upload
@rate_limit("RATELIMIT_UPLOAD", api_caller, scope="upload")  # the pages' upload budget, per account
@operation(Op("Upload images or zips (editor)", TAG, form=UploadForm, out=UploadOut, description=UPLOAD_HELP,
              errors=(413,), more={202: (UploadOut, "A background import was started: follow its status_url.")}))
def upload_images(user, data, dataset_id: int):
    dataset = get_dataset_for(user, dataset_id, "editor")
    upload = upload_files(dataset.id, user.id, [(f.filename or "image", f.stream) for f in data["files"]],
                          data.get("class_id"))
    answer = {"summary": upload.summary, "results": [r.to_dict() for r in upload.results],
              "imports": [present.import_doc(imp) for imp in upload.imports]}
    return answer, 202 if upload.imports else 200


@bp.get("/v1/datasets/<int:dataset_id>/images/<int:image_id>")
@operation(Op("One image's details", TAG, out=ImageOut))
def get_image_info(user, data, dataset_id: int, image_id: int):
    return get_image(get_dataset_for(user, dataset_id).id, image_id)


@bp.get("/v1/datasets/<int:dataset_id>/images/<int:image_id>/file")
@operation(Op("The original image file, as uploaded", TAG, files=IMAGE_FILE))
def get_image_file(user, data, dataset_id: int, image_id: int):
    image = get_image(get_dataset_for(user, dataset_id).id, image_id)
    response = send_file(get_storage().local_path(image_key(image.sha256)), mimetype=f"image/{image.format.lower()}",
                         download_name=clean_filename(image.filename), etag=image.sha256)
    response.cache_control.private = True
    return response


@contextmanager
def _ids_of_this_dataset():
    """The services' refusal of ids that are not images of the dataset, in the API's words (the pages'
    say to reload the page)."""
    try:
        yield
    except NotInDataset:
        raise NotFound(_("Some of the image ids are not images of this dataset (deleted, or never in it); "
                         "nothing was changed.")) from None


@bp.post("/v1/datasets/<int:dataset_id>/images/labels")
@operation(Op("Give many images one class, or none (editor)", TAG, body=LabelIn, out=CountOut, errors=(422,)))
def label_images(user, data, dataset_id: int):
    dataset = get_dataset_for(user, dataset_id, "editor")
    with _ids_of_this_dataset():
        return {"count": set_labels(dataset.id, sorted(set(data["image_ids"])), data["class_id"], user.id)}


@bp.post("/v1/datasets/<int:dataset_id>/labels")
@rate_limit("RATELIMIT_UPLOAD", api_caller, scope="upload")
@operation(Op("Label images from a CSV of labels (editor)", TAG, form=LabelsCsvForm, out=LabelsOut,
              errors=(413, 422), description=LABELS_HELP,
              more={202: (LabelsStartedOut, "Applied in the background: follow the import's status_url.")}))
def import_labels(user, data, dataset_id: int):
    dataset = get_dataset_for(user, dataset_id, "editor")
    started = label_from_csv(dataset.id, user.id, data["file"].filename or "", data["file"].stream)
    if started.imp:
        return {"import_": present.import_doc(started.imp)}, 202
    return {**started.result.counts(), "message": started.result.line()["message"]}


@bp.post("/v1/datasets/<int:dataset_id>/images/delete")
@operation(Op("Delete many images (editor)", TAG, body=ImageIdsIn, out=CountOut))
def delete_many_images(user, data, dataset_id: int):
    dataset = get_dataset_for(user, dataset_id, "editor")
    with _ids_of_this_dataset():
        return {"count": delete_images(dataset.id, sorted(set(data["image_ids"])))}


@bp.delete("/v1/datasets/<int:dataset_id>/images/<int:image_id>")
@operation(Op("Delete one image (editor)", TAG, status=204))
def delete_image(user, data, dataset_id: int, image_id: int):
    dataset = get_dataset_for(user, dataset_id, "editor")
    try:
        delete_images(dataset.id, [image_id])
    except NotInDataset:
        raise NotFound(_("There is no image %(id)s in this dataset.", id=image_id)) from None


@bp.get("/v1/datasets/<int:dataset_id>/imports")
@operation(Op("Running imports, and those that ended in the last day", IMPORTS, out=ImportListOut))
def list_imports(user, data, dataset_id: int):
    dataset = get_dataset_for(user, dataset_id)
    return {"imports": [present.import_doc(imp) for imp in import_service.dataset_imports(dataset.id)]}


@bp.get("/v1/datasets/<int:dataset_id>/imports/<int:import_id>")
@operation(Op("An import's progress (its status_url)", IMPORTS, out=ImportOut))
def get_import(user, data, dataset_id: int, import_id: int):
    dataset = get_dataset_for(user, dataset_id)
    return present.import_doc(import_service.view_import(dataset.id, import_id))


@bp.post("/v1/datasets/<int:dataset_id>/imports/<int:import_id>/cancel")
@operation(Op("Stop an import, keeping what it added (editor)", IMPORTS, out=ImportOut))
def cancel_import(user, data, dataset_id: int, import_id: int):
    dataset = get_dataset_for(user, dataset_id, "editor")
    return present.import_doc(import_service.cancel_import(user, dataset, import_id))
