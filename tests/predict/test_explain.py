"""POST /models/<id>/explain: the 'Why this answer?' map, with /predict's access rules and errors."""
from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from tests.predict.conftest import CLASSES, color_image


def one(name: str = "red", seed: int = 7, size: int = 40) -> dict:
    return {"file": (io.BytesIO(color_image(name, seed=seed, size=size)), f"{name}.png")}


def test_the_answer_is_a_grid_over_the_models_crop(logged_in, make_model):
    run = make_model(logged_in.user)
    response = logged_in.post(f"/models/{run.id}/explain", data=one("blue"))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["model"] == {"id": run.id, "name": run.name, "classes": CLASSES, "architecture": "small_cnn"}
    assert body["filename"] == "blue.png"
    assert body["category"] == "blue" and body["category_index"] == CLASSES.index("blue")
    assert 0 < body["confidence"] <= 1
    assert body["rows"] == len(body["grid"]) == 8 and all(len(row) == body["cols"] == 8 for row in body["grid"])
    assert all(0 <= v <= 1 for row in body["grid"] for v in row)
    assert body["crop_size"] == 32
    crop = body["crop"]  # the middle 87.5% of the short side (32 / 37 pixels at this small size)
    assert crop["left"] == crop["top"] and crop["width"] == crop["height"] == pytest.approx(32 / 37)
    assert crop["left"] == pytest.approx((1 - crop["width"]) / 2, abs=0.02)  # the crop's offset is whole pixels


def test_the_same_image_gets_the_same_map_and_it_matches_predict(logged_in, make_model):
    run = make_model(logged_in.user)
    first = logged_in.post(f"/models/{run.id}/explain", data=one("green")).json
    again = logged_in.post(f"/models/{run.id}/explain", data=one("green")).json
    assert first["grid"] == again["grid"]
    predicted = logged_in.post(f"/models/{run.id}/predict", data=one("green")).json["predictions"][0]
    assert first["category"] == predicted["category"]
    assert abs(first["confidence"] - predicted["confidence"]) < 1e-5


def test_a_chosen_class_is_explained_from_the_form_or_the_query(logged_in, make_model):
    run = make_model(logged_in.user)
    body = logged_in.post(f"/models/{run.id}/explain", data={**one("red"), "category_index": "2"}).json
    assert body["category_index"] == 2 and body["category"] == CLASSES[2]
    body = logged_in.post(f"/models/{run.id}/explain?category_index=1", data=one("red")).json
    assert body["category_index"] == 1 and body["category"] == CLASSES[1]


def test_the_forward_passes_go_through_the_inference_thread(logged_in, make_model, monkeypatch):
    from app import serving

    images = []
    real = serving.InferenceQueue.run

    def counted(self, predictor, batch, timings=None):
        images.append(len(batch))
        return real(self, predictor, batch, timings)

    monkeypatch.setattr(serving.InferenceQueue, "run", counted)
    run = make_model(logged_in.user)
    assert logged_in.post(f"/models/{run.id}/explain", data=one()).status_code == 200
    assert sum(images) == 50 and max(images) <= 32


def test_a_class_beyond_the_models_is_422_naming_the_field(logged_in, make_model):
    run = make_model(logged_in.user)
    response = logged_in.post(f"/models/{run.id}/explain", data={**one(), "category_index": "3"})
    assert response.status_code == 422 and response.json["code"] == "validation_error"
    assert list(response.json["fields"]) == ["category_index"] and "below 3" in response.json["error"]
    response = logged_in.post(f"/models/{run.id}/explain", data={**one(), "category_index": "-1"})
    assert response.status_code == 400 and "category_index" in response.json["fields"]  # the document says min 0


def test_a_file_that_is_not_an_image_is_422_bad_image(logged_in, make_model):
    run = make_model(logged_in.user)
    response = logged_in.post(f"/models/{run.id}/explain", data={"file": (io.BytesIO(b"hello"), "notes.txt")})
    assert response.status_code == 422 and response.is_json
    assert response.json["code"] == "bad_image" and "not an image" in response.json["error"]


def test_no_file_is_400_no_file(logged_in, make_model):
    run = make_model(logged_in.user)
    response = logged_in.post(f"/models/{run.id}/explain", data={})
    assert response.status_code == 400 and response.json["code"] == "no_file"


def test_unknown_and_foreign_private_models_are_404_json(app, logged_in, make_user, make_model):
    private = make_model(make_user("bob"), name="bob's")
    for url in ("/models/999/explain", f"/models/{private.id}/explain"):
        response = logged_in.post(url, data=one())
        assert response.status_code == 404 and response.json["code"] == "unknown_model", url
    response = app.test_client().post(f"/models/{private.id}/explain", data=one(), csrf=False)
    assert response.status_code == 404 and response.is_json


def test_a_public_model_explains_to_anyone(app, make_user, make_model):
    run = make_model(make_user("bob"), public=True)
    response = app.test_client().post(f"/models/{run.id}/explain", data=one("blue"), csrf=False)
    assert response.status_code == 200 and response.json["category"] == "blue"


def test_a_model_still_training_is_409(logged_in, make_model):
    from app.extensions import db

    run = make_model(logged_in.user)
    run.status = "running"
    db.session.commit()
    response = logged_in.post(f"/models/{run.id}/explain", data=one())
    assert response.status_code == 409 and response.json["code"] == "not_ready"


def test_the_crop_is_located_in_a_wide_picture(logged_in, make_model):
    run = make_model(logged_in.user)
    buf = io.BytesIO()
    PILImage.new("RGB", (200, 100), (220, 30, 30)).save(buf, "PNG")
    crop = logged_in.post(f"/models/{run.id}/explain", data={"file": (io.BytesIO(buf.getvalue()), "wide.png")}).json["crop"]
    assert crop["height"] == pytest.approx(32 / 37) and crop["width"] == pytest.approx(crop["height"] / 2, abs=0.01)
    assert crop["left"] == pytest.approx((1 - crop["width"]) / 2, abs=0.02)


def test_the_route_is_in_the_openapi_document(client):
    operation = client.get("/api/openapi.json").json["paths"]["/models/{run_id}/explain"]["post"]
    assert "centre crop" in operation["description"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form  # the form schema is referenced, with `file` and `category_index`
    assert {"404", "409", "422", "429"} <= set(operation["responses"])
