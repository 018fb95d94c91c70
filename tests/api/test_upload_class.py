"""POST /api/v1/datasets/<id>/images with `class_id`: the images land in that class of the dataset; a
class of another dataset (or none such) is 404 with nothing stored; viewers cannot upload at all."""
from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import Image
from tests.api.conftest import files, png


def _images(dataset_id: int) -> int:
    return db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset_id))


def test_an_editor_uploads_into_a_class(api_as, world):
    ids = world()
    answer = api_as("editor").post(f"/api/v1/datasets/{ids['d']}/images",
                                   data={"files": files(("cam.jpg", png(900))), "class_id": str(ids["l"])})
    assert answer.status_code == 200, answer.json
    [result] = answer.json["results"]
    assert (result["status"], result["label"]) == ("added", "red")
    image = db.session.get(Image, result["image_id"])
    assert (image.label_id, image.label_source) == (ids["l"], "user")
    listed = api_as("editor").get(f"/api/v1/datasets/{ids['d']}/images?class={ids['l']}").json
    assert listed["total"] == 5 and result["image_id"] in {i["id"] for i in listed["images"]}


def test_a_class_of_another_dataset_is_404_and_nothing_is_stored(api_as, world):
    ids, other = world(), world()
    before = _images(ids["d"])
    for class_id in (other["l"], 987_654):
        answer = api_as("owner").post(f"/api/v1/datasets/{ids['d']}/images",
                                      data={"files": files(("cam.jpg", png(901))), "class_id": str(class_id)})
        assert answer.status_code == 404 and answer.json["code"] == "not_found", answer.json
    assert _images(ids["d"]) == before


def test_a_class_id_that_is_not_an_id_is_a_400(api_as, world):
    ids = world()
    answer = api_as("owner").post(f"/api/v1/datasets/{ids['d']}/images",
                                  data={"files": files(("cam.jpg", png(902))), "class_id": "red"})
    assert answer.status_code == 400 and "class_id" in answer.json["fields"], answer.json
    assert _images(ids["d"]) == 8


def test_a_viewer_cannot_upload_into_a_class(api_as, world):
    ids = world()
    answer = api_as("viewer").post(f"/api/v1/datasets/{ids['d']}/images",
                                   data={"files": files(("cam.jpg", png(903))), "class_id": str(ids["l"])})
    assert answer.status_code == 403
    assert _images(ids["d"]) == 8
