"""The whole loop through the API, in process: a dataset, images (loose and a zip import), classes and
labels, a real training run in a real worker, its results and files, promotion, prediction. Plus the
request contract: validation errors, keyset paging, options checked as the form checks them."""
from __future__ import annotations

import io
import zipfile

from app.extensions import db
from app.models import Image
from tests.api.conftest import files, png
from tests.conftest import run_jobs

RED, BLUE = (220, 30, 30), (30, 30, 220)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_dataset_images_training_and_prediction(app, api_as):
    api = api_as("owner")
    created = api.post("/api/v1/datasets", json={"name": "Colours", "description": "red or blue"})
    assert created.status_code == 201 and created.json["role"] == "owner" and created.json["images"] == 0
    d = created.json["id"]
    loose = api.post(f"/api/v1/datasets/{d}/images",
                     data={"file": files(("r0.png", png(0, RED)), ("bad.txt", b"not an image"))})
    assert loose.status_code == 200
    assert [r["status"] for r in loose.json["results"]] == ["added", "error"] and loose.json["imports"] == []
    archive = _zip({f"red/r{i}.png": png(i + 1, RED) for i in range(7)} |
                   {f"blue/b{i}.png": png(i + 1, BLUE) for i in range(8)})
    started = api.post(f"/api/v1/datasets/{d}/images", data={"files": files(("day.zip", archive))})
    assert started.status_code == 202
    status_url = started.json["imports"][0]["status_url"]
    assert status_url.startswith("/api/v1/") and api.get(status_url).json["status"] == "queued"
    run_jobs(app)
    status = api.get(status_url).json
    assert status["status"] == "finished" and status["added"] == 15
    classes = {c["name"]: c for c in api.get(f"/api/v1/datasets/{d}/classes").json["classes"]}
    assert classes["red"]["images"] == 7 and classes["blue"]["images"] == 8
    unlabeled = api.get(f"/api/v1/datasets/{d}/images?class=unlabeled").json["images"]
    labelled = api.post(f"/api/v1/datasets/{d}/images/labels",
                        json={"image_ids": [i["id"] for i in unlabeled], "class_id": classes["red"]["id"]})
    assert labelled.json == {"count": 1}

    run = api.post(f"/api/v1/datasets/{d}/runs", json={
        "name": "nightly", "architecture": "small_cnn", "mode": "scratch",
        "options": {"image_size": 32, "epochs": 2, "batch_size": 8, "val_fraction": 0.2, "test_fraction": 0.2}})
    assert run.status_code == 201, run.json
    assert run.json["status"] == "queued" and run.json["options"]["epochs"] == 2
    assert run.json["queue_position"] == 1
    r = run.json["id"]
    assert api.get(f"/api/v1/runs/{r}/metrics").json["code"] == "not_ready"
    run_jobs(app)
    done = api.get(f"/api/v1/runs/{r}").json
    assert done["status"] == "succeeded" and done["progress"]["fraction"] == 1.0 and done["finished"]
    metrics = api.get(f"/api/v1/runs/{r}/metrics").json
    assert metrics["classes"] == ["red", "blue"] and metrics["accuracy"] is not None
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["count"] > 0
    assert len(api.get(f"/api/v1/runs/{r}/history").json["history"]) >= 1
    onnx = api.get(done["downloads"]["onnx"])
    assert onnx.status_code == 200 and len(onnx.data) > 1000

    promoted = api.put("/api/v1/me/default-model", json={"model_id": r})
    assert promoted.json["default_model_id"] == r
    assert [m["default"] for m in api.get("/api/v1/models").json["models"]] == [True]
    answer = api.post("/predict", data={"file": files(("x.png", png(50, BLUE)), ("y.png", png(51, RED)))})
    assert answer.status_code == 200 and answer.json["model"]["id"] == r
    assert [p["filename"] for p in answer.json["predictions"]] == ["x.png", "y.png"]
    assert {"category", "category_index", "confidence", "top_k"} <= set(answer.json["predictions"][0])


def test_options_are_checked_as_the_form_checks_them(api_as, world):
    api, ids = api_as("owner"), world()
    url = f"/api/v1/datasets/{ids['d']}/runs"
    wrong_type = api.post(url, json={"name": "m", "options": {"epochs": "x"}})
    assert wrong_type.status_code == 400 and wrong_type.json["code"] == "validation_error"
    assert wrong_type.json["fields"] == {"options": {"epochs": ["Not a valid integer."]}}
    assert wrong_type.json["error"] == "options.epochs: Not a valid integer."
    unknown = api.post(url, json={"name": "m", "options": {"turbo": True}})
    assert unknown.status_code == 400 and "turbo" in unknown.json["fields"]["options"]
    out_of_range = api.post(url, json={"name": "m", "architecture": "small_cnn", "mode": "scratch",
                                       "options": {"epochs": 0}})
    assert out_of_range.status_code == 422 and "Epochs must be between 1 and 1000" in out_of_range.json["error"]
    mismatch = api.post(url, json={"name": "m", "architecture": "small_cnn", "mode": "quick"})
    assert mismatch.status_code == 422 and "scratch" in mismatch.json["error"]
    assert api.post(url, json={"name": "m", "mode": "sideways"}).status_code == 400


def test_a_seed_out_of_range_is_422_naming_the_option(api_as, world):
    api, ids = api_as("owner"), world()
    url = f"/api/v1/datasets/{ids['d']}/runs"
    message = "Random seed must be a whole number from 0 to 4,294,967,295."
    for seed in (-1, 99999999999999999999):
        refused = api.post(url, json={"name": "m", "architecture": "small_cnn", "mode": "scratch",
                                      "options": {"image_size": 32, "seed": seed}})
        assert refused.status_code == 422 and refused.json["code"] == "validation_error", refused.json
        assert refused.json["error"] == message and refused.json["fields"] == {"options": {"seed": [message]}}
    mismatch = api.post(url, json={"name": "m", "architecture": "small_cnn", "mode": "quick"})
    assert mismatch.status_code == 422 and list(mismatch.json["fields"]) == ["mode"]


def test_a_run_without_a_name_gets_the_name_the_form_suggests(api_as, world):
    from app.blueprints.training.forms import default_name

    api, ids = api_as("owner"), world()
    started = api.post(f"/api/v1/datasets/{ids['d']}/runs", json={"architecture": "small_cnn", "mode": "scratch",
                                                                   "options": {"image_size": 32, "epochs": 1}})
    assert started.status_code == 201, started.json
    assert started.json["name"] == default_name("Colours", "scratch") and "· From scratch ·" in started.json["name"]
    spec = api.get("/api/openapi.json").json
    assert "name" not in spec["components"]["schemas"]["RunIn"].get("required", [])
    missing = api_as("stranger").post(f"/api/v1/datasets/{ids['d']}/runs", json={})
    assert missing.status_code == 404  # the dataset's name is not given away to fill the default
    again = api.post(f"/api/v1/datasets/{ids['d']}/runs", json={"architecture": "small_cnn", "mode": "scratch",
                                                                 "options": {"image_size": 32, "epochs": 1}})
    assert again.status_code == 201 and again.json["name"] == started.json["name"] + " (2)"


def test_requests_that_break_the_document_are_400_with_the_field(api_as, world):
    api, ids = api_as("owner"), world()
    for body, field in (({"name": 5}, "name"), ({"name": "x", "owner": 3}, "owner"), ({}, "name"),
                        ({"name": "a\x00b"}, "name")):
        response = api.post("/api/v1/datasets", json=body)
        assert response.status_code == 400 and field in response.json["fields"], body
    assert api.post("/api/v1/datasets", data="not json", content_type="application/json").status_code == 400
    no_files = api.post(f"/api/v1/datasets/{ids['d']}/images", data={})
    assert no_files.status_code == 400 and no_files.json["code"] == "no_file"
    labels = f"/api/v1/datasets/{ids['d']}/images/labels"
    assert api.post(labels, json={"image_ids": [True], "class_id": None}).status_code == 400
    assert api.post(labels, json={"image_ids": [ids["i"]], "class_id": "1"}).status_code == 400


def test_images_page_by_key_and_filters(api_as, world):
    api, ids = api_as("viewer"), world()
    url = f"/api/v1/datasets/{ids['d']}/images"
    seen, cursor = [], None
    while True:
        page = api.get(url + "?limit=3" + (f"&before={cursor}" if cursor else "")).json
        seen += [i["id"] for i in page["images"]]
        assert page["total"] == 8
        cursor = page["older"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 8
    red = api.get(url + f"?class={ids['l']}").json
    assert red["total"] == 4 and {i["class_id"] for i in red["images"]} == {ids["l"]}
    assert api.get(url + "?class=purple").status_code == 400
    assert api.get(url + "?limit=0").status_code == 400
    assert api.get(url + "?class=999999").json["code"] == "not_found"  # a class of no dataset of yours


def test_deletes_and_conflicts_speak_codes(api_as, world):
    api, ids = api_as("owner"), world(queued=True)
    busy = api.delete(f"/api/v1/datasets/{ids['d']}")
    assert busy.status_code == 409 and busy.json["code"] == "conflict"
    assert api.post(f"/api/v1/runs/{ids['r']}/cancel").json["code"] == "conflict"
    taken = api.post(f"/api/v1/datasets/{ids['d']}/classes", json={"name": "RED"})
    assert taken.status_code == 409
    # ids that are not images of this dataset: told in the API's words (a script has no page to reload)
    stray = [api.post(f"/api/v1/datasets/{ids['d']}/images/delete", json={"image_ids": [ids["i"], 999_999]}),
             api.post(f"/api/v1/datasets/{ids['d']}/images/labels", json={"image_ids": [999_999], "class_id": None}),
             api.delete(f"/api/v1/datasets/{ids['d']}/images/999999")]
    assert [(r.status_code, r.json["code"]) for r in stray] == [(404, "not_found")] * 3
    assert not any("page" in r.json["error"] for r in stray) and "not images of this dataset" in stray[0].json["error"]
    assert "There is no image 999999 in this dataset." == stray[2].json["error"]
    assert db.session.get(Image, ids["i"]) is not None  # nothing was changed
    gone = api.post(f"/api/v1/datasets/{ids['d']}/images/delete", json={"image_ids": [ids["i"], ids["i2"]]})
    assert gone.json == {"count": 2} and db.session.get(Image, ids["i"]) is None
    assert api.post(f"/api/v1/runs/{ids['q']}/cancel").json["status"] == "cancelled"
    assert api.delete(f"/api/v1/datasets/{ids['d']}").status_code == 202
    assert api.get(f"/api/v1/datasets/{ids['d']}").status_code == 404


def test_bad_tokens_and_sessions(app, api_as, users, make_user):
    from app.blueprints.predict.tokens import revoke_token
    from app.models import ApiToken

    assert api_as("owner").get("/api/v1/me").json["username"] == "alice"
    bad = app.test_client().get("/api/v1/me", headers={"Authorization": "Bearer ics_nope"})
    assert bad.status_code == 401 and bad.json["code"] == "unauthorized" and bad.headers["WWW-Authenticate"]
    revoke_token(users["owner"][0].id, db.session.query(ApiToken).filter_by(user_id=users["owner"][0].id).one().id)
    assert api_as("owner").get("/api/v1/me").status_code == 401
    from tests.conftest import login

    browser = app.test_client()
    login(browser, "vic")
    assert browser.get("/api/v1/me").status_code == 403  # a session call names no origin: refused
    own_page = browser.get("/api/v1/me", headers={"Referer": "http://localhost/datasets"})
    assert own_page.json["username"] == "vic"  # the studio's own pages may call it
    foreign = browser.post("/api/v1/datasets", json={"name": "x"}, csrf=False, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and foreign.json["code"] == "forbidden"


def test_document_and_docs_page(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"] == "3.0.3"
    create = spec["paths"]["/api/v1/datasets"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/DatasetIn")
    assert spec["components"]["schemas"]["DatasetIn"]["additionalProperties"] is False
    options = spec["components"]["schemas"]["TrainOptionsIn"]["properties"]
    assert options["optimizer"]["enum"] == ["adamw", "sgd"] and "Learning rate" in options["lr"]["description"]
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "POST /api/v1/datasets/{dataset_id}/runs" in html and "https://" not in html.split("<main")[1]
    # Markdown's `code` spans are shown as code, not as backticks; everything else stays escaped
    assert "<code>Authorization: Bearer &lt;token&gt;</code>" in html and "<code>unauthorized</code>" in html
    assert "`" not in html.split("<main")[1].split("</main>")[0]
