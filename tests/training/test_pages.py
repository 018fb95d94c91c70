"""Run page, progress partial, results numbers, models list/compare/delete, and access (404s)."""
from __future__ import annotations

import re

from app.extensions import db
from app.models import DatasetShare, RunSample, TrainingRun, utcnow
from app.filestore import run_key
from app.storage import get_storage
from tests.conftest import login

CLASSES = ["cat", "dog", "fox"]
# rows = true class, columns = predicted: 9 of 12 right
MATRIX = [[4, 1, 0], [0, 3, 1], [1, 0, 2]]
METRICS = {
    "accuracy": 0.75, "count": 12, "confusion_matrix": MATRIX, "macro_f1": 0.74,
    "per_class": [
        {"class": "cat", "precision": 0.8, "recall": 0.8, "f1": 0.8, "support": 5},
        {"class": "dog", "precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4},
        {"class": "fox", "precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "support": 3},
    ],
    "misclassified": [{"image_id": 7, "true": "fox", "predicted": "cat", "confidence": 0.91}],
    "best_epoch": 3,
}


def make_run(dataset, user, status="succeeded", **fields):
    """A run with a frozen list of 30 samples (18 train, 6 val, 6 test) stored the way start_run does."""
    from app.blueprints.training.samples import FrozenSamples, store

    frozen = FrozenSamples(CLASSES, [(i + 1, i % 3, f"{i:064x}") for i in range(30)],
                           {"train": list(range(18)), "val": list(range(18, 24)), "test": list(range(24, 30))})
    run = TrainingRun(dataset_id=dataset.id, created_by_id=user.id, name=fields.pop("name", "pets"),
                      architecture="small_cnn", mode="scratch",
                      options=fields.pop("options", {"epochs": 3, "lr": None, "seed": 0}),
                      status=status, classes=CLASSES, snapshot=frozen.summary(),
                      history=[{"epoch": e, "train_loss": 1 / e, "train_acc": 0.5 + e / 10, "val_loss": 1.2 / e,
                                "val_acc": 0.4 + e / 10} for e in (1, 2, 3)], **fields)
    db.session.add(run)
    db.session.commit()
    store(run.id, frozen)
    return run


def test_progress_partial_renders_mid_run_and_keeps_polling(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, status="running", heartbeat_at=utcnow(), started_at=utcnow(),
                   progress={"phase": "training", "epoch": 2, "epochs": 3, "step": 4, "steps": 7,
                             "fraction": 0.42, "eta_seconds": 75, "images_per_sec": 123.4,
                             "train_acc": 0.66, "val_acc": 0.5})
    response = logged_in.get(f"/models/{run.id}/progress", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Trigger" not in response.headers
    assert "<html" not in html and 'hx-trigger="every 1s"' in html
    assert "epoch 2 of 3, step 4 of 7" in html and "width: 42.0%" in html
    assert "1 min 15 s" in html and "123 images/s" in html and "66%" in html
    assert html.count("<polyline") == 4  # train & val loss, train & val accuracy
    assert "Cancel" in html
    assert 'data-title-prefix="42% · "' in html  # training.js puts it before the tab's title


def test_progress_of_a_whole_batch_epoch_names_no_step(logged_in, make_dataset):
    """Quick mode fits its heads on all stored features at once: "step 1 of 1" would say nothing."""
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, status="running", heartbeat_at=utcnow(), started_at=utcnow(),
                   progress={"phase": "training", "epoch": 19, "epochs": 60, "step": 1, "steps": 1, "fraction": 0.5})
    html = logged_in.get(f"/models/{run.id}/progress", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "epoch 19 of 60" in html and "step" not in html.split("epoch 19 of 60")[1][:20]


def test_progress_poll_reads_neither_the_sample_list_nor_the_test_results(logged_in, make_dataset):
    import json

    from app.blueprints.training.samples import FrozenSamples, store
    from tests.training.conftest import recorded_sql

    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, status="running", heartbeat_at=utcnow(), started_at=utcnow(),
                   progress={"phase": "training", "fraction": 0.5})
    big = FrozenSamples(CLASSES, [(i + 1, i % 3, f"{i:064x}") for i in range(5000)],
                        {"train": list(range(4000)), "val": list(range(4000, 4500)), "test": list(range(4500, 5000))})
    db.session.execute(db.delete(RunSample).where(RunSample.run_id == run.id))
    run.snapshot = big.summary()
    db.session.commit()
    store(run.id, big)  # a 5,000-image run: its row must stay as small as a 30-image one
    db.session.expire_all()
    with recorded_sql() as statements:
        for _ in range(3):
            response = logged_in.get(f"/models/{run.id}/progress", headers={"HX-Request": "true"})
            assert response.status_code == 200 and 'hx-trigger="every 1s"' in response.get_data(as_text=True)
    touched = [s for s in statements if any(n in s for n in ("run_samples", "test_predictions", "threshold_curve"))]
    assert touched == [] and [s for s in statements if "FROM training_runs" in s]
    assert len(json.dumps(db.session.get(TrainingRun, run.id).snapshot)) < 300
    html = logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    assert "5,000 images" in html and "4,000 to learn from" in html  # the run page's summary, from the row


def test_finished_run_stops_polling_and_asks_for_results(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, metrics=METRICS)
    response = logged_in.get(f"/models/{run.id}/progress", headers={"HX-Request": "true"})
    assert response.headers["HX-Trigger"] == "run-finished"
    assert "every 1s" not in response.get_data(as_text=True)
    results = logged_in.get(f"/models/{run.id}/results").get_data(as_text=True)
    assert 'id="run-results"' in results and "big-number" in results


def test_results_show_confusion_matrix_and_per_class_numbers(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    run = make_run(dataset, logged_in.user, metrics=METRICS)
    html = logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    assert ">75%</div>" in html and "Correct on <strong>9 of 12</strong> test images" in html
    table = html[html.index('class="confusion"'):html.index("</table>", html.index('class="confusion"'))]
    rows = re.findall(r"<tr><th scope=\"row\">(\w+)</th>(.*?)</tr>", table, re.S)
    cells = {name: [int(v) for v in re.findall(r">(\d+)</td>", body)] for name, body in rows}
    assert cells == {"cat": [4, 1, 0], "dog": [0, 3, 1], "fox": [1, 0, 2]}
    assert 'class="diag" style="--share: 0.800"' in table  # 4 of 5 cats right
    per_class = html[html.index('class="per-class"'):]
    assert re.search(r"<td>fox</td><td>67%</td>\s*<td>67%</td><td>0.67</td><td>3</td>", per_class)
    assert "Precision: when the model says this class" in html
    assert f"/datasets/{dataset.id}/images/7/thumb" in html and "91% sure" in html
    assert "30 images" in html and "18 to learn from" in html  # snapshot summary
    assert "Epochs</th><td>3</td>" in html and "Learning rate</th><td>0.003 (default)" in html
    for kind in ("weights", "torchscript", "onnx", "card"):
        assert f"/models/{run.id}/download/{kind}" in html


def test_models_list_sorts_and_compares(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    # "worse" on the test images but better on validation: models are ranked on validation only
    worse = make_run(dataset, logged_in.user, name="worse",
                     metrics={**METRICS, "accuracy": 0.5, "validation": {"accuracy": 0.9}})
    better = make_run(dataset, logged_in.user, name="better", metrics={**METRICS, "best_val_acc": 0.6},
                      options={"epochs": 9, "lr": None, "seed": 0})
    failed = make_run(dataset, logged_in.user, name="broken", status="failed", error="boom")
    html = logged_in.get("/models").get_data(as_text=True)
    assert html.index("broken") < html.index("better") < html.index("worse")  # newest first
    assert "badge-failed" in html and "75.0%" in html and "90.0%" in html and "60.0%" in html
    html = logged_in.get("/models?sort=accuracy").get_data(as_text=True)
    assert "Validation accuracy" in html
    assert html.index("worse") < html.index("better") < html.index("broken")
    page = logged_in.get(f"/models/compare?pick={worse.id}&pick={better.id}").get_data(as_text=True)
    assert "worse" in page and "better" in page and "75.0%" in page and "50.0%" in page
    assert '<tr class="differs"><th scope="row">Epochs</th><td>3</td><td>9</td>' in page
    assert logged_in.get("/models/compare?a=" + str(failed.id)).status_code == 302  # back to the list, which says why


def test_compare_matches_settings_by_name_across_modes(logged_in, make_dataset):
    """A fine-tuned model applies options a quick one does not (and the other way round): each row pairs the
    same setting, in either order, with "—" where a model had no such setting (it was a 500, or values
    under the wrong names)."""
    dataset = make_dataset(logged_in.user, {"red": 3, "blue": 3})
    quick = make_run(dataset, logged_in.user, name="quick", metrics=METRICS,
                     options={"mode": "quick", "head": "auto", "epochs": 60, "seed": 0})
    tuned = make_run(dataset, logged_in.user, name="tuned", metrics=METRICS,
                     options={"mode": "finetune", "epochs": 2, "seed": 0, "weight_decay": 0.1})
    quick.mode, tuned.mode = "quick", "finetune"
    quick.architecture = tuned.architecture = "efficientnet_lite0"
    db.session.commit()
    for first, second in ((tuned, quick), (quick, tuned)):
        response = logged_in.get(f"/models/compare?pick={first.id}&pick={second.id}")
        assert response.status_code == 200
        rows = dict((label, (va, vb)) for label, va, vb in re.findall(
            r'<tr class="[a-z]*"><th scope="row">([^<]+)</th><td>([^<]*)</td><td>([^<]*)</td></tr>',
            response.get_data(as_text=True)))
        tuned_at = 0 if first is tuned else 1
        assert rows["Epochs"][tuned_at] == "2" and rows["Epochs"][1 - tuned_at] == "60"
        assert rows["Weight decay"][tuned_at] == "0.1"
        assert rows["Random seed"] == ("0", "0")
        assert rows["Head"][tuned_at] == "—" and rows["Head"][1 - tuned_at].startswith("automatic")


def test_delete_removes_row_and_files_and_needs_creator_or_editor(client, make_user, make_dataset):
    owner, viewer = make_user("alice"), make_user("bob")
    dataset = make_dataset(owner, {"red": 3, "blue": 3})
    db.session.add(DatasetShare(dataset_id=dataset.id, user_id=viewer.id, role="viewer"))
    run = make_run(dataset, owner, metrics=METRICS, artifact_dir="x")
    get_storage().write(run_key(run.id, "model.pt"), b"weights")
    login(client, "bob")
    assert client.post(f"/models/{run.id}/delete").status_code == 403
    login(client, "alice")
    assert client.post(f"/models/{run.id}/delete").status_code == 302
    assert db.session.get(TrainingRun, run.id) is None and not get_storage().exists(run_key(run.id, "model.pt"))
    running = make_run(dataset, owner, status="running")
    assert client.post(f"/models/{running.id}/delete").status_code == 409


def test_viewer_of_dataset_sees_and_trains(client, make_user, make_dataset):
    from tests.training.conftest import TINY

    owner, viewer = make_user("alice"), make_user("bob")
    dataset = make_dataset(owner)
    db.session.add(DatasetShare(dataset_id=dataset.id, user_id=viewer.id, role="viewer"))
    db.session.commit()
    run = make_run(dataset, owner, metrics=METRICS)
    login(client, "bob")
    assert client.get(f"/models/{run.id}").status_code == 200
    assert client.post(f"/datasets/{dataset.id}/train", data=TINY).status_code == 302


def test_stranger_gets_404_on_every_training_route(app, client, make_user, make_dataset):
    owner = make_user("alice")
    make_user("mallory")
    dataset = make_dataset(owner, {"red": 3, "blue": 3})
    run = make_run(dataset, owner, metrics=METRICS, artifact_dir="x")
    other = make_run(dataset, owner, name="quokka-model", metrics=METRICS)
    login(client, "mallory")
    routes = {  # every training.* endpoint must be listed here
        "training.new_run": [("GET", f"/datasets/{dataset.id}/train"), ("POST", f"/datasets/{dataset.id}/train")],
        "training.run_detail": [("GET", f"/models/{run.id}")],
        "training.run_progress": [("GET", f"/models/{run.id}/progress")],
        "training.run_results": [("GET", f"/models/{run.id}/results")],
        "training.cancel_run": [("POST", f"/models/{run.id}/cancel")],
        "training.retry_run": [("POST", f"/models/{run.id}/retry")],
        "training.delete_run": [("POST", f"/models/{run.id}/delete")],
        "training.restore_run": [("POST", f"/models/{run.id}/restore")],  # deleted ones: test_model_undo.py
        "training.compare_models": [("GET", f"/models/compare?a={run.id}&b={other.id}")],
        "training.download": [("GET", f"/models/{run.id}/download/{k}")
                              for k in ("weights", "onnx", "card", "preprocess", "checkpoint", "zip")],
        "training.train_more": [("POST", f"/models/{run.id}/train-more")],
        "training.run_split": [("GET", f"/models/{run.id}/split")],
        "training.split_csv": [("GET", f"/models/{run.id}/split.csv")],
        "training.history_csv": [("GET", f"/models/{run.id}/history.csv")],
        "training.save_threshold": [("POST", f"/models/{run.id}/threshold")],
        "training.confusion_cell": [("GET", f"/models/{run.id}/confusion/0/0")],
        "training.start_evaluation": [("POST", f"/models/{run.id}/evaluations")],
        "training.evaluation_detail": [("GET", f"/models/{run.id}/evaluations/1")],  # tests/training/test_evaluations.py
        "training.cancel_evaluation": [("POST", f"/models/{run.id}/evaluations/1/cancel")],
    }
    listed_ok = {"training.list_models"}  # a stranger's own (empty) list
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("training.")}
    assert endpoints == set(routes) | listed_ok, "add new training routes to this test"
    for endpoint, calls in routes.items():
        for method, url in calls:
            response = client.open(url, method=method)
            assert response.status_code == 404, (endpoint, url, response.status_code)
    html = client.get("/models").get_data(as_text=True)
    assert "pets" not in html and "quokka-model" not in html  # names no common word has
    assert db.session.get(TrainingRun, run.id).status == "succeeded"
