"""Batch results as CSV: Accept: text/csv or format=csv, one row per file in upload order."""
from __future__ import annotations

import csv
import io

from tests.predict.conftest import color_image

HEADER = ["filename", "category", "category_index", "confidence", "unknown", "error"]


def batch() -> list:
    return [(io.BytesIO(color_image("red", seed=700)), "a-red.png"),
            (io.BytesIO(b"this is not an image"), "notes.txt"),
            (io.BytesIO(color_image("blue", seed=701)), "b-blue.png"),
            (io.BytesIO(color_image("green", seed=702)), "c-green.png")]


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_accept_header_gives_one_row_per_file_in_order(logged_in, make_model):
    run = make_model(logged_in.user)
    response = logged_in.post(f"/models/{run.id}/predict", data={"file": batch()}, headers={"Accept": "text/csv"})
    rows = rows_of(response)
    assert rows[0] == HEADER and len(rows) == 5
    assert [r[0] for r in rows[1:]] == ["a-red.png", "notes.txt", "b-blue.png", "c-green.png"]
    assert [(r[1], r[2], r[4]) for r in rows[1:] if r[0] != "notes.txt"] == [
        ("red", "0", "false"), ("blue", "2", "false"), ("green", "1", "false")]
    assert all(0 < float(r[3]) <= 1 and r[5] == "" for r in rows[1:] if r[0] != "notes.txt")
    bad = rows[2]
    assert bad[1:5] == ["", "", "", ""] and bad[5]  # the file's error message, like the JSON entry
    json_answer = logged_in.post(f"/models/{run.id}/predict", data={"file": batch()}).json
    assert bad[5] == json_answer["predictions"][1]["error"]
    assert f"predictions-model-{run.id}.csv" in response.headers["Content-Disposition"]


def test_format_field_or_query_on_predict(logged_in, make_model):
    run = make_model(logged_in.user)
    rows = rows_of(logged_in.post("/predict", data={"file": batch(), "model": str(run.id), "format": "csv"}))
    assert rows[0] == HEADER and [r[0] for r in rows[1:]] == ["a-red.png", "notes.txt", "b-blue.png", "c-green.png"]
    rows = rows_of(logged_in.post(f"/predict?model={run.id}&format=csv", data={"file": batch()[:1]}))
    assert len(rows) == 2 and rows[1][:3] == ["a-red.png", "red", "0"]
    # JSON stays the default, also for clients that accept anything, and format=json beats the header
    assert logged_in.post(f"/predict?model={run.id}", data={"file": batch()[:1]},
                          headers={"Accept": "*/*"}).is_json
    assert logged_in.post(f"/predict?model={run.id}&format=json", data={"file": batch()[:1]},
                          headers={"Accept": "text/csv"}).is_json


def test_unknown_rows_and_errors(logged_in, make_model):
    run = make_model(logged_in.user, threshold=1.0)
    rows = rows_of(logged_in.post(f"/models/{run.id}/predict?format=csv", data={"file": batch()[:1]}))
    assert rows[1][:3] == ["a-red.png", "", ""] and rows[1][4] == "true" and float(rows[1][3]) > 0
    response = logged_in.post(f"/models/{run.id}/predict?format=xml", data={"file": batch()[:1]})
    assert response.status_code == 400 and "format" in response.json["error"]
    response = logged_in.post(f"/models/{run.id}/predict", data={}, headers={"Accept": "text/csv"})
    assert response.status_code == 400 and response.is_json  # request errors stay JSON


def test_openapi_documents_csv(client):
    spec = client.get("/api/openapi.json").json
    operation = spec["paths"]["/predict"]["post"]
    assert "text/csv" in operation["responses"]["200"]["content"]
    assert any(p["name"] == "format" for p in operation["parameters"])
    form = spec["components"]["schemas"]["PredictForm"]
    assert form["properties"]["format"]["enum"] == ["json", "csv"]


def test_names_that_look_like_formulas_are_not_run_by_spreadsheets(logged_in, make_model):
    run = make_model(logged_in.user)
    files = [(io.BytesIO(color_image("red", seed=703)), "=1+2.png"),
             (io.BytesIO(b"junk"), "@SUM(A1).txt"), (io.BytesIO(color_image("blue", seed=704)), "plain-name.png")]
    rows = rows_of(logged_in.post(f"/models/{run.id}/predict?format=csv", data={"file": files}))
    assert [r[0] for r in rows[1:]] == ["'=1+2.png", "'@SUM(A1).txt", "plain-name.png"]
