"""Confidence threshold ("not sure"): the coverage curve (on the validation images, never the test
images), saving it from the results page, its effect on the prediction API; and the clickable confusion
matrix (test images, reported only)."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

from app.blueprints.training.thresholds import (
    coverage_curve, curve_grid, grid_point, parse_percent, plain_words, point_at, saved_message, stored_curve,
    threshold_context,
)
from app.extensions import db
from app.ml import classification_report
from app.models import DatasetShare, TrainingRun
from tests.conftest import flashes, login
from tests.predict.conftest import _fresh_model_cache, color_image, make_model, trained_artifacts  # noqa: F401
from tests.training.test_pages import MATRIX, METRICS, make_run

HAND_MADE = [  # confidence, right?
    {"image_id": 1, "true": 0, "predicted": 0, "confidence": 0.95},
    {"image_id": 2, "true": 1, "predicted": 0, "confidence": 0.85},
    {"image_id": 3, "true": 1, "predicted": 1, "confidence": 0.70},
    {"image_id": 4, "true": 0, "predicted": 1, "confidence": 0.50},
    {"image_id": 5, "true": 1, "predicted": 1, "confidence": 0.30},
]


def test_coverage_curve_on_a_hand_made_case():
    curve = coverage_curve(HAND_MADE)
    assert len(curve) == 101 and [p["threshold"] for p in curve[:3]] == [0.0, 0.01, 0.02]
    assert curve[0] == {"threshold": 0.0, "answered": 5, "total": 5, "accuracy": pytest.approx(3 / 5)}
    assert (curve[30]["answered"], curve[30]["accuracy"]) == (5, pytest.approx(3 / 5))  # 0.30 >= 0.30
    assert (curve[31]["answered"], curve[31]["accuracy"]) == (4, pytest.approx(2 / 4))
    assert (curve[50]["answered"], curve[50]["accuracy"]) == (4, pytest.approx(2 / 4))
    assert (curve[70]["answered"], curve[70]["accuracy"]) == (3, pytest.approx(2 / 3))
    assert (curve[86]["answered"], curve[86]["accuracy"]) == (1, 1.0)
    assert curve[100] == {"threshold": 1.0, "answered": 0, "total": 5, "accuracy": None}
    assert plain_words(point_at(HAND_MADE, 0.7)) == (
        "At 70%: answers 3 of 5 validation images, 67% of those correct; says 'not sure' for 2.")
    assert "answers none of the 5" in plain_words(point_at(HAND_MADE, 0.99))
    assert (parse_percent("80"), parse_percent("99.5"), parse_percent(""), parse_percent("0")) == (0.8, 0.995,
                                                                                                  None, None)
    for bad in ("abc", "101", "-1", "nan"):
        with pytest.raises(ValueError):
            parse_percent(bad)


def test_classification_report_keeps_every_test_prediction():
    probs = np.array([[.9, .1], [.3, .7], [.6, .4]])
    report = classification_report([0, 0, 1], [0, 1, 0], probs, ["cat", "dog"], image_ids=[10, 11, 12])
    assert report["predictions"] == [
        {"image_id": 10, "true": 0, "predicted": 0, "confidence": pytest.approx(.9)},
        {"image_id": 11, "true": 0, "predicted": 1, "confidence": pytest.approx(.7)},
        {"image_id": 12, "true": 1, "predicted": 0, "confidence": pytest.approx(.6)},
    ]


def predictions_for(matrix, first_id: int = 100) -> list[dict]:
    """One prediction per matrix count, image ids 100, 101, ... in row-major order."""
    rows, image_id = [], first_id
    for t, counts in enumerate(matrix):
        for p, count in enumerate(counts):
            for _ in range(count):
                rows.append({"image_id": image_id, "true": t, "predicted": p, "confidence": 0.5 + image_id % 7 / 20})
                image_id += 1
    return rows


VAL_MATRIX = [[3, 0, 0], [1, 2, 0], [0, 0, 2]]  # 8 validation images, 7 right


def scored(dataset, user, stored_curve=True):
    """A succeeded run with per-image validation and test results, as training stores them (the curve
    on validation included)."""
    val = predictions_for(VAL_MATRIX, first_id=500)
    return make_run(dataset, user, metrics={**METRICS, "test_predictions_kept": True},
                    test_predictions=predictions_for(MATRIX), val_predictions=val,
                    threshold_curve=curve_grid(val, split="val") if stored_curve else None)


@pytest.fixture
def scored_run(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 2, "blue": 2})
    return scored(dataset, logged_in.user)


def test_results_page_has_slider_and_clickable_cells(logged_in, scored_run):
    html = logged_in.get(f"/models/{scored_run.id}").get_data(as_text=True)
    assert 'type="range"' in html and 'name="percent"' in html and "js/threshold.js" in html
    assert "At 0%: answers 8 of 8 validation images, 88% of those correct; says &#39;not sure&#39; for 0." in html
    assert html.count("<polyline") >= 2 and "Save threshold" in html
    cell = f"/models/{scored_run.id}/confusion/2/0"
    assert f'href="{cell}"' in html and f'hx-get="{cell}"' in html
    assert f"/models/{scored_run.id}/confusion/0/2" not in html  # an empty cell is no link
    # the cell "really fox, said cat" holds exactly one image: the 12 ids run 100..111 row by row
    response = logged_in.get(cell, headers={"HX-Request": "true"})
    part = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in part
    assert re.findall(r'data-image-id="(\d+)"', part) == ["109"]
    assert f"/datasets/{scored_run.dataset_id}/images/109/thumb" in part and "really “fox”" in part
    ids = re.findall(r'data-image-id="(\d+)"', logged_in.get(f"/models/{scored_run.id}/confusion/1/1")
                     .get_data(as_text=True))
    assert sorted(ids) == ["105", "106", "107"]
    assert logged_in.get(f"/models/{scored_run.id}/confusion/3/0").status_code == 404


def test_stored_curve_gives_the_same_numbers_as_counting():
    rng = np.random.default_rng(3)
    rows = [{"image_id": i, "true": int(rng.integers(3)), "predicted": int(rng.integers(3)),
             "confidence": float(rng.choice([0.3, 0.7, 0.995, 1.0, rng.random()]))} for i in range(300)]
    rows.append({"image_id": 999, "true": 1, "predicted": 1, "confidence": None})  # never held back
    curve = curve_grid(rows)
    assert len(curve["grid"]) == 1001 and curve["total"] == 301
    for i in range(1001):
        expected = point_at(rows, i / 1000)
        assert grid_point(curve, i / 1000) == expected, i
    assert grid_point(curve, parse_percent("99.5")) == point_at(rows, 0.995)
    assert grid_point(curve, 0.12345) is None  # between two points: the page counts instead
    assert coverage_curve(rows)[70] == {k: point_at(rows, 0.7)[k] for k in ("threshold", "answered", "total",
                                                                            "accuracy")}


def test_results_page_reads_the_stored_curve_not_the_predictions(logged_in, make_dataset):
    from tests.training.conftest import recorded_sql

    dataset = make_dataset(logged_in.user, {"red": 2, "blue": 2})
    stored, computed = scored(dataset, logged_in.user), scored(dataset, logged_in.user, stored_curve=False)
    with recorded_sql() as statements:
        html = logged_in.get(f"/models/{stored.id}").get_data(as_text=True)
    assert "data-threshold-curve" in html and "says &#39;not sure&#39; for 0." in html
    assert not [s for s in statements if "test_predictions" in s or "val_predictions" in s], statements
    assert [s for s in statements if "threshold_curve" in s]  # read on its own, only by the results part
    # a run with validation predictions but no stored curve still gets its chart (from validation)
    other = logged_in.get(f"/models/{computed.id}").get_data(as_text=True)
    assert other.count("<polyline") == html.count("<polyline") and "says &#39;not sure&#39; for 0." in other


def test_old_run_without_predictions_gets_a_plain_message(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 2, "blue": 2})
    run = make_run(dataset, logged_in.user, metrics=METRICS)
    html = logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    assert 'data-threshold-missing="retrain"' in html and "needs a retrain" in html
    assert 'type="range"' not in html and "/confusion/" not in html
    assert logged_in.get(f"/models/{run.id}/confusion/0/0").status_code == 404


def test_a_curve_made_on_the_test_images_is_never_shown(logged_in, make_dataset):
    """A run from before validation predictions were kept has a threshold curve made on its test images:
    the page says the chart needs a retrain (the test cells still open), and never draws that curve."""
    dataset = make_dataset(logged_in.user, {"red": 2, "blue": 2})
    test = predictions_for(MATRIX)
    run = make_run(dataset, logged_in.user, metrics=METRICS, test_predictions=test, threshold=0.6,
                   threshold_curve=curve_grid(test))
    html = logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    assert "needs a retrain" in html and 'type="range"' not in html and "data-threshold-curve" not in html
    assert "test images" in html and "answers 12 of 12" not in html
    assert f"/models/{run.id}/confusion/2/0" in html  # the test images of each cell stay viewable
    assert "Remove threshold" in html and "Saved threshold: <strong>60%</strong>" in html
    assert "below 60% sure" in saved_message(db.session.get(TrainingRun, run.id))


def test_thresholds_never_read_the_test_predictions(logged_in, make_dataset):
    """Poisoned test predictions (every one 99% sure and right) change nothing the threshold pages
    show: the curve, the sentence and the saved message all count validation images."""
    dataset = make_dataset(logged_in.user, {"red": 2, "blue": 2})
    honest, poisoned = scored(dataset, logged_in.user, stored_curve=False), scored(dataset, logged_in.user,
                                                                                  stored_curve=False)
    poisoned.test_predictions = [{"image_id": i, "true": 0, "predicted": 0, "confidence": 0.99} for i in range(50)]
    db.session.commit()
    pages = []
    for run in (honest, poisoned):
        logged_in.post(f"/models/{run.id}/threshold", data={"percent": "80"})
        db.session.expire_all()
        run = db.session.get(TrainingRun, run.id)
        pages.append((threshold_context(run)["words"], saved_message(run), stored_curve(run)))
    assert pages[0] == pages[1] and "of 8 validation images" in pages[0][0] and pages[0][2]["split"] == "val"


def test_save_threshold_needs_creator_or_editor_and_a_number(client, make_user, make_dataset):
    owner, viewer = make_user("alice"), make_user("victor")
    dataset = make_dataset(owner, {"red": 2, "blue": 2})
    run = scored(dataset, owner)
    db.session.add(DatasetShare(dataset_id=dataset.id, user_id=viewer.id, role="viewer"))
    db.session.commit()
    login(client, "victor")
    assert client.post(f"/models/{run.id}/threshold", data={"percent": "80"}).status_code == 403
    assert "You can still try values here" in client.get(f"/models/{run.id}").get_data(as_text=True)
    client.post("/logout")
    login(client, "alice")
    response = client.post(f"/models/{run.id}/threshold", data={"percent": "abc"}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and "from 0 to 100" in response.get_data(as_text=True)
    assert db.session.get(TrainingRun, run.id).threshold is None
    response = client.post(f"/models/{run.id}/threshold", data={"percent": "60"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/models/{run.id}#threshold")
    db.session.expire_all()
    assert db.session.get(TrainingRun, run.id).threshold == pytest.approx(0.6)
    page = client.get(f"/models/{run.id}").get_data(as_text=True)
    assert "Saved threshold: <strong>60%</strong>" in page
    assert any("below 60% sure" in m for m in flashes(page))
    response = client.post(f"/models/{run.id}/threshold", data={"percent": "60", "clear": "1"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200 and "No threshold saved" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(TrainingRun, run.id).threshold is None


def test_threshold_saved_on_the_page_makes_the_api_say_unknown(logged_in, make_model):
    run = make_model(logged_in.user)
    upload = {"file": [(io.BytesIO(color_image("red", seed=900)), "red.png")]}
    before = logged_in.post(f"/models/{run.id}/predict", data=upload).json["predictions"][0]
    assert before["category"] == "red" and before["unknown"] is False and before["confidence"] < 1.0
    response = logged_in.post(f"/models/{run.id}/threshold", data={"percent": "100"})
    assert response.status_code == 302
    upload = {"file": [(io.BytesIO(color_image("red", seed=900)), "red.png")]}
    after = logged_in.post(f"/models/{run.id}/predict", data=upload).json["predictions"][0]
    assert after["category"] is None and after["category_index"] is None and after["unknown"] is True
    assert after["confidence"] == pytest.approx(before["confidence"]) and after["top_k"][0]["category"] == "red"
    assert "shown as “not sure”" in logged_in.get(f"/models/{run.id}/try").get_data(as_text=True)
