"""POST /predict and POST /models/<id>/predict: the prototype contract, errors, model choice."""
from __future__ import annotations

import io

import numpy as np
import pytest

from tests.conftest import login
from tests.predict.conftest import CLASSES, color_image


def files(*names: str) -> list:
    """The Flask test client's form of requests' files=[('file', ...), ('file', ...)]."""
    return [(io.BytesIO(color_image(n, seed=500 + i)), f"{n}{i}.png") for i, n in enumerate(names)]


def make_instance_default(app, make_user, make_model):
    """An admin makes a model public and the site default through the model's page."""
    admin = make_user("root", is_admin=True)
    run = make_model(admin, public=False)
    client = app.test_client()
    login(client, "root")
    assert client.post(f"/models/{run.id}/try/public", data={"public": "1"}).status_code == 302
    assert client.post(f"/models/{run.id}/try/instance-default", data={"use": "1"}).status_code == 302
    return run


def test_prototype_client_call_uses_instance_default_anonymously(app, make_user, make_model):
    run = make_instance_default(app, make_user, make_model)
    anonymous = app.test_client()
    response = anonymous.post("/predict", data={"file": files("red", "blue", "green", "red")}, csrf=False)
    assert response.status_code == 200, response.json
    body = response.json
    assert [p["category"] for p in body["predictions"]] == ["red", "blue", "green", "red"]
    assert [p["category_index"] for p in body["predictions"]] == [0, 2, 1, 0]
    assert [p["filename"] for p in body["predictions"]] == ["red0.png", "blue1.png", "green2.png", "red3.png"]
    assert body["model"] == {"id": run.id, "name": run.name, "classes": CLASSES, "architecture": "small_cnn"}
    first = body["predictions"][0]
    assert len(first["top_k"]) == 3 and first["top_k"][0]["category"] == "red"
    assert first["confidence"] == first["top_k"][0]["confidence"] and first["unknown"] is False


def test_the_answer_says_where_the_time_went(logged_in, make_model):
    """A Server-Timing header (shown by browsers' developer tools, read by bench/predict.py)."""
    run = make_model(logged_in.user)
    response = logged_in.post(f"/models/{run.id}/predict", data={"file": files("red", "blue", "green")})
    stages = {}
    for part in response.headers["Server-Timing"].split(", "):
        name, duration, *desc = part.split(";")
        stages[name] = (float(duration.removeprefix("dur=")), desc)
    assert set(stages) == {"body", "decode", "queue", "forward", "app"}
    assert all(duration >= 0 for duration, _ in stages.values())
    assert stages["forward"][0] > 0 and stages["forward"][1] == ['desc="batch of 3"']
    assert stages["body"][0] > 0
    assert stages["app"][0] >= stages["body"][0] + stages["decode"][0] + stages["queue"][0] + stages["forward"][0]


def test_files_field_and_top_k(logged_in, make_model):
    run = make_model(logged_in.user)
    response = logged_in.post(f"/predict?model={run.id}", data={"files": files("green"), "top_k": "2"})
    prediction = response.json["predictions"][0]
    assert prediction["category"] == "green"
    assert [s["category_index"] for s in prediction["top_k"]][0] == 1 and len(prediction["top_k"]) == 2


def test_bad_files_get_errors_and_good_ones_answers(logged_in, make_model):
    run = make_model(logged_in.user)
    png = color_image("blue", seed=3)
    upload = [(io.BytesIO(b"this is not an image"), "notes.txt"), (io.BytesIO(png[: len(png) // 2]), "cut.png"),
              (io.BytesIO(b""), "empty.png"), (io.BytesIO(png), "good.png")]
    response = logged_in.post(f"/models/{run.id}/predict", data={"file": upload})
    assert response.status_code == 200
    answers = response.json["predictions"]
    assert [a["filename"] for a in answers] == ["notes.txt", "cut.png", "empty.png", "good.png"]
    assert all(set(a) == {"filename", "error", "code"} and a["error"] and a["code"] == "bad_image" for a in answers[:3])
    assert answers[3]["category"] == "blue"


def test_image_over_pixel_limit_is_a_file_error(app, logged_in, make_model):
    run = make_model(logged_in.user)
    app.config["MAX_IMAGE_PIXELS"] = 30 * 30
    response = logged_in.post(f"/models/{run.id}/predict", data={"file": files("red")})
    assert "too large" in response.json["predictions"][0]["error"]


def test_identical_files_are_decoded_once_and_the_request_pixel_budget_holds(app, logged_in, make_model,
                                                                            monkeypatch):
    from app.ml.inference import Predictor

    run = make_model(logged_in.user)
    decodes = []
    real = Predictor.prepare_opened  # reads the pixels of an opened upload
    monkeypatch.setattr(Predictor, "prepare_opened", lambda self, *a, **k: decodes.append(1) or real(self, *a, **k))
    same = color_image("red", seed=1, size=40)
    response = logged_in.post(f"/models/{run.id}/predict",
                              data={"file": [(io.BytesIO(same), f"{i}.png") for i in range(6)]})
    answers = response.json["predictions"]
    assert len(decodes) == 1 and len(answers) == 6
    assert len({a["confidence"] for a in answers}) == 1 and all(a["category"] == "red" for a in answers)
    decodes.clear()
    app.config["PREDICT_MAX_REQUEST_PIXELS"] = 2 * 40 * 40  # two distinct 40x40 images fit
    distinct = [(io.BytesIO(color_image("blue", seed=s, size=40)), f"b{s}.png") for s in range(4)]
    answers = logged_in.post(f"/models/{run.id}/predict", data={"file": distinct}).json["predictions"]
    assert [("error" in a) for a in answers] == [False, False, True, True]
    assert "another request" in answers[2]["error"] and len(decodes) == 2


def test_no_files_is_400_json(logged_in, make_model):
    run = make_model(logged_in.user)
    for url in ("/predict", f"/models/{run.id}/predict"):
        response = logged_in.post(url, data={"model": str(run.id)})
        assert response.status_code == 400
        assert response.is_json and "No image" in response.json["error"]


def test_too_many_files_refused(app, logged_in, make_model):
    run = make_model(logged_in.user)
    app.config["PREDICT_MAX_FILES"] = 2
    response = logged_in.post(f"/models/{run.id}/predict", data={"file": files("red", "red", "red")})
    assert response.status_code == 413 and response.is_json


def test_unknown_and_foreign_private_models_are_404_json(app, logged_in, make_user, make_model):
    bob = make_user("bob")
    private = make_model(bob, name="bob's")
    for url, data in (("/models/999/predict", {}), ("/predict", {"model": "999"}), ("/predict?model=999", {}),
                      (f"/models/{private.id}/predict", {}), ("/predict", {"model": str(private.id)})):
        response = logged_in.post(url, data={**data, "file": files("red")})
        assert response.status_code == 404, url
        assert response.is_json and "does not exist" in response.json["error"]
        assert response.json["code"] == "unknown_model"
    anonymous = app.test_client()
    response = anonymous.post(f"/models/{private.id}/predict", data={"file": files("red")}, csrf=False)
    assert response.status_code == 404 and response.is_json


@pytest.mark.parametrize("url, data, field", [
    ("/predict", {"model": "abc"}, "model"), ("/predict?model=abc", {}, "model"),
    ("/predict", {"model": "MODEL_ID"}, "model"), ("/predict", {"model": "1.5"}, "model"),
    ("/predict", {"model": "-3"}, "model"), ("/predict", {"model": "0"}, "model"),
    ("/predict", {"model": "99999999999999999999999"}, "model"),
    ("/predict", {"top_k": "abc"}, "top_k"), ("/predict", {"format": "xml"}, "format"),
    ("/models/{id}/predict", {"top_k": "abc"}, "top_k"), ("/models/{id}/predict?top_k=0", {}, "top_k"),
    ("/models/{id}/predict", {"format": "xml"}, "format"), ("/models/{id}/predict?format=xml", {}, "format"),
])
def test_a_value_that_is_no_id_or_option_is_a_validation_error(logged_in, make_model, url, data, field):
    """Text that cannot be an id is a malformed request naming its field, like a bad top_k; only a
    well-formed id of a model the caller may not use is a 404."""
    run = make_model(logged_in.user)
    response = logged_in.post(url.format(id=run.id), data={**data, "file": files("red")})
    assert response.status_code == 400 and response.json["code"] == "validation_error"
    assert list(response.json["fields"]) == [field] and response.json["error"].startswith(f"{field}: ")


def test_anonymous_without_any_default_is_401_json(app):
    response = app.test_client().post("/predict", data={"file": files("red")}, csrf=False)
    assert response.status_code == 401 and response.is_json


def test_public_model_needs_no_token(app, make_user, make_model):
    run = make_model(make_user("bob"), public=True)
    response = app.test_client().post(f"/models/{run.id}/predict", data={"file": files("blue")}, csrf=False)
    assert response.status_code == 200 and response.json["predictions"][0]["category"] == "blue"


def test_model_still_training_is_409(logged_in, make_model):
    from app.extensions import db

    run = make_model(logged_in.user)
    run.status = "running"
    db.session.commit()
    response = logged_in.post(f"/models/{run.id}/predict", data={"file": files("red")})
    assert response.status_code == 409 and "cannot answer yet: its training is running" in response.json["error"]
    run.status = "cancelled"  # it never will: no "yet"
    db.session.commit()
    response = logged_in.post(f"/models/{run.id}/predict", data={"file": files("red")})
    assert response.status_code == 409 and response.json["code"] == "not_ready"
    assert "cannot answer: its training was cancelled. Retry it" in response.json["error"]


def test_user_default_model_from_the_try_page(logged_in, make_model):
    make_model(logged_in.user, name="first")
    second = make_model(logged_in.user, name="second")
    response = logged_in.post("/predict", data={"file": files("red")})
    assert response.status_code == 422 and "No model chosen" in response.json["error"]
    assert response.json["code"] == "no_model"
    logged_in.post(f"/models/{second.id}/try/default", data={"use": "1"})
    for data in ({}, {"model": ""}):  # an empty field is no choice either
        response = logged_in.post("/predict", data={**data, "file": files("red")})
        assert response.status_code == 200 and response.json["model"]["id"] == second.id


def test_threshold_marks_unsure_answers_unknown(logged_in, make_model):
    run = make_model(logged_in.user, threshold=0.999)
    prediction = logged_in.post(f"/models/{run.id}/predict", data={"file": files("red")}).json["predictions"][0]
    assert prediction["unknown"] is True
    assert prediction["category"] is None and prediction["category_index"] is None
    assert prediction["top_k"][0]["category"] == "red" and prediction["confidence"] < 0.999


def test_api_equals_the_model_run_directly(logged_in, make_model):
    from app.blueprints.predict.services import model_folder
    from app.ml.inference import Predictor, decode_image

    run = make_model(logged_in.user)
    names = ["red", "green", "blue", "blue", "green"]
    raw = [color_image(n, seed=900 + i, size=37 + 5 * i) for i, n in enumerate(names)]
    upload = [(io.BytesIO(b), f"{i}.png") for i, b in enumerate(raw)]
    answers = logged_in.post(f"/models/{run.id}/predict", data={"file": upload, "top_k": "3"}).json["predictions"]
    direct = Predictor.load(model_folder(run), backend="torch", device="cpu")
    probs = direct.predict_proba([decode_image(b) for b in raw])
    for answer, row in zip(answers, probs):
        assert answer["category_index"] == int(row.argmax())
        assert answer["category"] == direct.classes[int(row.argmax())]
        api_row = np.zeros(len(CLASSES))
        for score in answer["top_k"]:
            api_row[score["category_index"]] = score["confidence"]
        assert np.allclose(api_row, row, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 2, 32])
def test_batch_chunking_gives_the_same_answers(app, logged_in, make_model, batch):
    run = make_model(logged_in.user)
    app.config["PREDICT_MAX_BATCH"] = batch
    answers = logged_in.post(f"/models/{run.id}/predict", data={"file": files("red", "green", "blue")}).json
    assert [a["category"] for a in answers["predictions"]] == ["red", "green", "blue"]


def test_top_k_entries_and_the_order_of_ties():
    import numpy as np

    from app.blueprints.predict.services import prediction_entry

    probs = np.array([0.25, 0.5, 0.25, 0.0, 0.0], dtype=np.float32)
    entry = prediction_entry("x.png", probs, ["a", "b", "c", "d", "e"], 5, None)
    assert entry["top_k"] == [  # equal confidences keep class order, like the argmax the evaluation uses
        {"category": "b", "category_index": 1, "confidence": 0.5},
        {"category": "a", "category_index": 0, "confidence": 0.25},
        {"category": "c", "category_index": 2, "confidence": 0.25},
        {"category": "d", "category_index": 3, "confidence": 0.0},
        {"category": "e", "category_index": 4, "confidence": 0.0}]
    assert all(type(s["category_index"]) is int and type(s["confidence"]) is float for s in entry["top_k"])
    assert (entry["category"], entry["category_index"], entry["confidence"]) == ("b", 1, 0.5)
    tied = prediction_entry("y.png", np.array([0.5, 0.5], dtype=np.float32), ["a", "b"], 1, None)
    assert tied["category_index"] == int(np.array([0.5, 0.5]).argmax()) == 0


def test_the_only_ready_model_needs_no_choosing(app, logged_in, make_model):
    from app.extensions import db

    only = make_model(logged_in.user, name="only")
    response = logged_in.post("/predict", data={"file": files("red")})
    assert response.status_code == 200 and response.json["model"]["id"] == only.id
    assert response.json["predictions"][0]["category"] == "red"
    running = make_model(logged_in.user, name="still training")
    running.status = "running"
    db.session.commit()
    assert logged_in.post("/predict", data={"file": files("red")}).json["model"]["id"] == only.id
    second = make_model(logged_in.user, name="second")
    response = logged_in.post("/predict", data={"file": files("red")})
    assert response.status_code == 422 and response.json["code"] == "no_model"
    assert str(second.id) in response.json["error"] and str(only.id) in response.json["error"]


def test_api_page_example_names_a_ready_model(logged_in, make_model):
    page = logged_in.get("/tokens").get_data(as_text=True)
    assert "no trained model yet" in page
    run = make_model(logged_in.user, name="colours")
    page = logged_in.post("/tokens", data={"name": "script"}).get_data(as_text=True)
    assert f"-F model={run.id} -F file=@photo.jpg" in page and "Bearer ics_" in page
