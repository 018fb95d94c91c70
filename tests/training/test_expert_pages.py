"""What an expert checks on a run's pages: the log says where and why training stopped, "Settings used"
lists only what applied, the test accuracy comes with its interval, the history and the split can be
read and downloaded, and "Train more" refuses what it cannot continue."""
from __future__ import annotations

import re

from app.blueprints.training import lifecycle
from app.extensions import db
from app.models import TrainingRun
from tests.training.test_pages import METRICS, make_run


def _events(epochs: int, stop_at: int):
    for epoch in range(1, stop_at + 1):
        yield {"phase": "training", "epoch": epoch, "epochs": epochs, "message": f"Epoch {epoch} finished",
               "val_acc": 0.5 + epoch / 100, "train_acc": 0.6, "loss": 0.3, "stage": None}


def test_a_run_that_stops_early_logs_its_last_epoch_and_why(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, status="running")
    reporter = lifecycle.RunReporter(run)
    for event in _events(60, 8):
        reporter(event)
    why = "Stopped early after epoch 8 of 60: validation accuracy had not improved for 5 epochs."
    reporter({"phase": "training", "epoch": 8, "epochs": 60, "message": why, "note": True, "stage": None})
    reporter({"phase": "evaluating", "message": None})
    reporter.flush()
    messages = [line["message"] for line in db.session.get(TrainingRun, run.id).log]
    assert [m for m in messages if m.startswith("Epoch")] == ["Epoch 1/60: validation accuracy 51%",
                                                            "Epoch 8/60: validation accuracy 58%"]
    assert messages.index(why) == messages.index("Epoch 8/60: validation accuracy 58%") + 1


def _settings(html: str) -> set[str]:
    return set(re.findall(r'<tr><th scope="row">([^<]+)</th><td>', html))


def test_settings_used_lists_only_what_applied(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    sgd = make_run(dataset, logged_in.user, metrics=METRICS, options={
        "mode": "fine_tune", "optimizer": "sgd", "momentum": 0.8, "nesterov": False, "schedule": "step",
        "random_resized_crop": False, "val_fraction": 0.2})
    sgd.mode = "fine_tune"
    quick = make_run(dataset, logged_in.user, metrics=METRICS, options={"mode": "quick", "head": "auto"})
    quick.mode = "quick"
    db.session.commit()
    tuned = _settings(logged_in.get(f"/models/{sgd.id}").get_data(as_text=True))
    assert {"Momentum", "Nesterov momentum", "Step size", "Step factor", "Random crops", "Mirror images",
            "Backbone learning-rate factor", "Freeze BatchNorm statistics", "Best epoch by"} <= tuned
    assert "Head" not in tuned
    plain = _settings(logged_in.get(f"/models/{quick.id}").get_data(as_text=True))
    assert "Head" in plain and not plain & {"Momentum", "Nesterov momentum", "Step size", "Random crops",
                                             "Mirror images", "Freeze BatchNorm statistics",
                                             "Backbone learning-rate factor"}


def test_accuracy_interval_history_table_and_split_pages(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    metrics = {**METRICS, "confusion_matrix": [[12, 0, 0], [0, 10, 2], [1, 3, 8]], "accuracy": 30 / 36}
    run = make_run(dataset, logged_in.user, metrics=metrics)
    html = logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    assert "95% confidence interval: <strong>68%–92%</strong>" in html  # Wilson, 30 of 36
    assert "Epoch by epoch" in html and html.count("<tr class=") >= 3 and "history.csv" in html
    first = logged_in.get(f"/models/{run.id}/split?part=train").get_data(as_text=True)
    assert "train (learn from) (18)" in first and re.findall(r'data-image-id="(\d+)"', first)[:3] == ["1", "2", "3"]
    assert len(re.findall(r'data-image-id="', first)) == 18 and "after=" not in first  # one page: 18 < 100
    part = logged_in.get(f"/models/{run.id}/split?part=test&after=26", headers={"HX-Request": "true"})
    assert "<html" not in part.get_data(as_text=True)
    assert re.findall(r'data-image-id="(\d+)"', part.get_data(as_text=True)) == ["28", "29", "30"]
    assert logged_in.get(f"/models/{run.id}/split?part=nope").status_code == 422


def test_train_more_refuses_what_it_cannot_continue(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    failed = make_run(dataset, logged_in.user, status="failed")
    assert logged_in.post(f"/models/{failed.id}/train-more", data={"epochs": "3"}).status_code == 409
    done = make_run(dataset, logged_in.user, metrics=METRICS, artifact_dir="x")  # no checkpoint file
    response = logged_in.post(f"/models/{done.id}/train-more", data={"epochs": "3"})
    assert response.status_code == 409 and "checkpoint is missing" in response.get_data(as_text=True)
    assert db.session.query(TrainingRun).count() == 2


def test_settings_used_of_a_continued_run_say_which_epochs_it_trained(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    first = make_run(dataset, logged_in.user, metrics={**METRICS, "best_epoch": 2}, options={"epochs": 2})
    more = make_run(dataset, logged_in.user, status="queued", options={"epochs": 2}, continued_from_id=first.id)
    assert "<td>2 more (epochs 3–4 of 4)</td>" in logged_in.get(f"/models/{more.id}").get_data(as_text=True)
    more.status, more.metrics = "succeeded", {**METRICS, "start_epoch": 2, "best_epoch": 4}
    first.metrics = None  # what the run stored itself is read first
    db.session.commit()
    page = logged_in.get(f"/models/{more.id}").get_data(as_text=True)
    assert '<th scope="row">Epochs</th><td>2 more (epochs 3–4 of 4)</td>' in page
    one = make_run(dataset, logged_in.user, metrics={**METRICS, "start_epoch": 5}, options={"epochs": 1},
                   continued_from_id=first.id)
    assert "<td>1 more (epoch 6 of 6)</td>" in logged_in.get(f"/models/{one.id}").get_data(as_text=True)
    assert '<th scope="row">Epochs</th><td>2</td>' in logged_in.get(f"/models/{first.id}").get_data(as_text=True)


def test_train_more_says_which_epoch_is_kept_without_validation_images(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    metrics = {**METRICS, "artifacts": {"checkpoint": "checkpoint.pt"}}
    usual = make_run(dataset, logged_in.user, metrics=metrics)
    text = re.search(r'id="train-more-text">([^<]*)<', logged_in.get(f"/models/{usual.id}").get_data(as_text=True))
    assert "(epoch 3, its best)" in text.group(1) and "best of the new epochs by validation accuracy" in text.group(1)
    no_val = make_run(dataset, logged_in.user, metrics=metrics, options={"epochs": 3, "val_fraction": 0})
    no_val.snapshot = {**no_val.snapshot, "counts": [[8, 0, 2], [8, 0, 2], [8, 0, 2]]}
    db.session.commit()
    text = re.search(r'id="train-more-text">([^<]*)<', logged_in.get(f"/models/{no_val.id}").get_data(as_text=True))
    assert "(epoch 3, its last)" in text.group(1) and "the last of the new epochs is kept" in text.group(1)
    assert "by validation" not in text.group(1)
