"""What the training pages claim is true: nothing about test or validation images a run did not keep, no
speed credit for image features another run computed, no images/s for features already computed, and a
compare button that says why it will not compare."""
from __future__ import annotations

import html as html_lib

from sqlalchemy import select

from app.extensions import db
from app.models import TrainingRun, utcnow
from tests.conftest import flashes, run_jobs
from tests.training.test_pages import METRICS, make_run


def _text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def test_a_run_without_validation_or_test_images_claims_neither(app, start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    response = start_run(dataset.id, val_fraction="0", test_fraction="0")
    assert response.status_code == 302  # a warning, not a refusal: experts may want every image to learn from
    queued_page = _text(logged_in.get(response.headers["Location"]))
    assert "keeps no validation and no test images: the last epoch is kept" in " ".join(flashes(queued_page))
    run_jobs(app)
    run = db.session.scalars(select(TrainingRun)).one()
    db.session.refresh(run)
    assert run.status == "succeeded", (run.error, run.log)
    assert run.metrics.get("accuracy") is None and run.metrics["best_epoch"] == 2  # the engine kept the last

    page = _text(logged_in.get(f"/models/{run.id}"))
    assert "every test image was classified correctly" not in page
    assert "No test images: this run kept none aside, so it has no test score" in page
    assert "Best epoch (by validation" not in page
    assert "No validation images, so no best epoch was picked: the model is the one after the last epoch (2)" in page
    assert "No test images were kept aside" in page and "no validation images either, so it has no score" in page
    assert 'class="per-class"' not in page and "big-number" not in page
    other = make_run(dataset, logged_in.user, name="other", metrics=METRICS)
    compare = _text(logged_in.get(f"/models/compare?a={run.id}&b={other.id}"))
    assert "<td>2 (the last: no validation images)</td>" in compare

    # a usual run is not warned about
    response = start_run(dataset.id, name="usual")
    assert flashes(_text(logged_in.get(response.headers["Location"]))) == []


def test_a_run_without_test_images_points_at_its_validation_score(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    metrics = {"best_epoch": 3, "best_val_acc": 0.75, "misclassified": [], "misclassified_count": 0,
               "validation": {"count": 12, "accuracy": 0.75}}
    run = make_run(dataset, logged_in.user, metrics=metrics)
    run.snapshot = {**run.snapshot, "counts": [[6, 4, 0], [6, 4, 0], [6, 4, 0]]}  # 12 validation, 0 test
    db.session.commit()
    page = _text(logged_in.get(f"/models/{run.id}"))
    assert "No test images: this run kept none aside" in page and "every test image" not in page
    assert "Its accuracy on the 12 validation images, 75.0%, is what the model list shows" in page
    assert "Best epoch (by validation accuracy): 3" in page


def test_compare_does_not_credit_speed_to_reused_image_features(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user)
    first = make_run(dataset, logged_in.user, name="Linear run", metrics={
        **METRICS, "seconds": 71.0, "embedding_stats": {"computed": 12, "reused": 0, "runtime": "onnx"}})
    second = make_run(dataset, logged_in.user, name="MLP run", metrics={
        **METRICS, "seconds": 10.0, "embedding_stats": {"computed": 0, "reused": 12, "runtime": "onnx"}})
    page = _text(logged_in.get(f"/models/compare?a={first.id}&b={second.id}"))
    assert "“MLP run” trained 7.1× faster (it reused the image features an earlier run had computed)." in page
    # faster although it computed its features itself: the plain claim stands
    third = make_run(dataset, logged_in.user, name="Slow reuser", metrics={
        **METRICS, "seconds": 200.0, "embedding_stats": {"computed": 0, "reused": 12, "runtime": "onnx"}})
    page = _text(logged_in.get(f"/models/compare?a={first.id}&b={third.id}"))
    assert "“Linear run” trained 2.8× faster." in page


def test_quick_modes_head_fitting_shows_no_images_per_second(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    progress = {"phase": "training", "epoch": 19, "epochs": 60, "step": 1, "steps": 1, "fraction": 0.8,
                "images_per_sec": 18088.0, "eta_seconds": 3, "val_acc": 0.9}
    run = make_run(dataset, logged_in.user, status="running", heartbeat_at=utcnow(), started_at=utcnow(),
                   progress=progress)
    run.mode = "quick"
    db.session.commit()

    def live() -> str:
        return _text(logged_in.get(f"/models/{run.id}/progress", headers={"HX-Request": "true"}))

    heads = live()
    assert "epoch 19 of 60" in heads and "images/s" not in heads and ">Speed<" not in heads
    run.progress = {**progress, "phase": "embedding", "images_per_sec": 41.6}  # it reads images here
    db.session.commit()
    assert "42 images/s" in live()
    run.mode, run.progress = "fine_tune", progress  # the image modes read images while training
    db.session.commit()
    assert "18,088 images/s" in live()


def test_comparing_fewer_or_more_than_two_models_says_so_on_the_list(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    runs = [make_run(dataset, logged_in.user, name=f"m{i}", metrics=METRICS) for i in range(3)]
    listing = _text(logged_in.get("/models"))
    assert "data-compare-button" in listing and "data-compare-hint" in listing  # what training.js switches
    response = logged_in.get(f"/models/compare?pick={runs[0].id}")
    assert response.status_code == 302 and response.headers["Location"].startswith("/models?pick=")
    page = _text(logged_in.get(response.headers["Location"]))
    assert flashes(page) == ["Tick two models to compare; 1 is ticked."]
    assert f'name="pick" value="{runs[0].id}" checked' in page and f'value="{runs[1].id}" checked' not in page
    response = logged_in.get("/models/compare?" + "&".join(f"pick={r.id}" for r in runs), follow_redirects=True)
    assert flashes(_text(response)) == ["Tick two models to compare; 3 are ticked."]
    response = logged_in.get("/models/compare", follow_redirects=True)
    assert flashes(_text(response)) == ["Tick two models to compare; 0 are ticked."]
    assert logged_in.get(f"/models/compare?pick={runs[0].id}&pick={runs[2].id}").status_code == 200


def test_a_model_picked_twice_is_one_pick_not_compared_with_itself(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, name="alone", metrics=METRICS)
    for query in (f"pick={run.id}&pick={run.id}", f"a={run.id}&b={run.id}"):
        response = logged_in.get(f"/models/compare?{query}", follow_redirects=True)
        assert flashes(_text(response)) == ["Tick two models to compare; 1 is ticked."], query
        assert "more accurate" not in _text(response)
