"""'Why this answer?': which parts of one image a model's answer rests on (POST /models/<id>/explain).

The same access rules and model loading as POST /models/<id>/predict (services.py); the forward passes
(about 50 for one image, see app/ml/explain.py) go through this process's inference thread, so an
explanation takes its turn with the predictions instead of fighting them for the cores."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import gettext as _

from app.blueprints.predict.services import get_usable_run, loaded_predictor, model_info, require_ready
from app.errors import RequestInvalid, ValidationError
from app.models import User

if TYPE_CHECKING:
    from app.serving import Upload

GRID_TILES = 8   # tiles per side of the map
PATCH_TILES = 2  # the hiding square's side in tiles: the stride is half the patch


class FieldRefused(ValidationError, RequestInvalid):
    """A value that does not work with this model (422), named in `fields` as the request named it."""


def explain_upload(user: User | None, upload: "Upload", run_id: int, category_index: int | None = None) -> dict:
    """The importance map of one uploaded image for the model's answer, or for `category_index`."""
    from app import serving
    from app.ml import explain

    run = require_ready(get_usable_run(user, run_id))
    predictor = loaded_predictor(run)
    classes = list(predictor.classes)
    if category_index is not None and category_index >= len(classes):
        message = _("category_index must be below %(count)s: this model knows %(count)s classes.", count=len(classes))
        raise FieldRefused(message, fields={"category_index": [message]})
    crop, image_size = _crop(predictor, upload)
    queue = serving.inference_queue(current_app.config["PREDICT_MAX_BATCH"])
    found = explain.occlusion(predictor, crop, category_index, tiles=GRID_TILES, patch=PATCH_TILES,
                              run=lambda batch: queue.run(predictor, batch))
    return {
        "model": model_info(run, classes),
        "filename": upload.filename,
        "category": classes[found.target],
        "category_index": found.target,
        "confidence": found.probability,
        "grid": [[round(float(v), 4) for v in row] for row in found.grid],
        "rows": GRID_TILES,
        "cols": GRID_TILES,
        "crop_size": predictor.image_size,
        "crop": explain.crop_fractions(*image_size, predictor.image_size),
    }


def _crop(predictor, upload: "Upload"):
    """(the model's uint8 crop, the picture's (width, height) as shown upright); a file that is not a
    usable image is a 422 bad_image."""
    from app.ml.errors import BadImage
    from app.ml.inference import read_pixels

    try:
        picture = read_pixels(predictor.open(upload.data, current_app.config["MAX_IMAGE_PIXELS"]))
        return predictor.crop(picture), picture.size
    except BadImage as err:
        raise ValidationError(err.message, code="bad_image") from None
