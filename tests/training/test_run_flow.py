"""Start a run from the page, run it in a real RQ worker, read the results and download the files."""
from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from sqlalchemy import select, update

from app.blueprints.training import samples
from app.blueprints.training.thresholds import curve_grid
from app.extensions import db, get_queue
from app.models import TrainingRun
from tests.conftest import flashes, run_jobs


def _runs():
    return db.session.scalars(select(TrainingRun)).all()


def test_form_lists_networks_and_modes(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user)
    html = logged_in.get(f"/datasets/{dataset.id}/train").get_data(as_text=True)
    assert "EfficientNet-Lite0" in html and "Small CNN" in html
    assert html.index("EfficientNet-Lite0") < html.index("Small CNN")  # pretrained first
    assert "Fastest." in html and "<details class=\"advanced\"" in html
    assert 'name="label_smoothing"' in html and 'value="0.1"' in html
    assert re.search(r'<option selected value="auto">Automatic \(best on validation\)</option>', html)


@pytest.mark.parametrize("changes, message", [
    ({"name": "x" * 121}, "cannot be longer than 120 characters"),
    ({"epochs": "0"}, "Epochs must be between 1 and 1000"),
    ({"architecture": "efficientnet_lite0", "mode": "scratch"}, "pretrained network"),
    ({"val_fraction": "0.6", "test_fraction": "0.6"}, "shares together must be at most 0.8"),
    ({"weight_decay": "lots"}, "Not a valid float"),
])
def test_invalid_form_is_refused_with_422_and_no_run(start_run, make_dataset, logged_in, changes, message):
    dataset = make_dataset(logged_in.user)
    response = start_run(dataset.id, **changes)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _runs() == [] and get_queue().count == 0


def test_the_name_is_prefilled_and_a_blank_one_gets_it(start_run, make_dataset, logged_in):
    from app.models import utcnow

    dataset = make_dataset(logged_in.user, name="Pets")
    expected = f"Pets · Quick · {utcnow():%Y-%m-%d}"
    html = logged_in.get(f"/datasets/{dataset.id}/train").get_data(as_text=True)
    assert f'value="{expected}"' in html
    response = start_run(dataset.id, name="   ")  # small_cnn, from scratch
    assert response.status_code == 302
    assert _runs()[0].name == f"Pets · From scratch · {utcnow():%Y-%m-%d}"


def test_default_names_are_numbered_when_the_dataset_has_them_already(app, start_run, make_dataset, logged_in):
    from app.blueprints.training import services
    from app.blueprints.training.forms import TrainForm
    from app.models import utcnow

    dataset = make_dataset(logged_in.user, name="Pets")
    base = f"Pets · From scratch · {utcnow():%Y-%m-%d}"
    # the third: a form prefilled before the others started; "Pets", a name of the trainer's own, stays as it is
    for name in ("", "", base, "Pets", "Pets"):
        assert start_run(dataset.id, name=name).status_code == 302
        db.session.execute(update(TrainingRun).values(status="failed"))  # not to hit the active-runs limit
        db.session.commit()
    assert sorted(r.name for r in _runs()) == sorted([base, f"{base} (2)", f"{base} (3)", "Pets", "Pets"])
    with app.test_request_context():
        form = TrainForm(formdata=None, mode="scratch")
        form.fill_name(dataset.name, services.run_names(dataset))
    assert form.name.data == f"{base} (4)" and form.default_parts == ("Pets · ", f" · {utcnow():%Y-%m-%d} (4)")
    page = logged_in.get(f"/datasets/{dataset.id}/train").get_data(as_text=True)  # the form the trainer sees
    quick = f"Pets · Quick · {utcnow():%Y-%m-%d}"
    assert f'value="{quick}"' in page  # no Quick run yet: not numbered
    db.session.add(TrainingRun(dataset_id=dataset.id, created_by_id=logged_in.user.id, name=quick, status="failed",
                               architecture="small_cnn", mode="quick"))
    db.session.commit()
    assert f'value="{quick} (2)"' in logged_in.get(f"/datasets/{dataset.id}/train").get_data(as_text=True)


def test_dataset_that_cannot_train_is_refused_before_queueing(start_run, make_dataset, logged_in):
    one_class = make_dataset(logged_in.user, {"red": 6, "blue": 0})
    response = start_run(one_class.id)
    assert response.status_code == 422
    assert "At least two classes need labeled images" in response.get_data(as_text=True)
    tiny_class = make_dataset(logged_in.user, {"red": 6, "blue": 2}, name="Tiny")
    response = start_run(tiny_class.id)
    assert response.status_code == 422 and "Class &#39;blue&#39; has only 2 images" in response.get_data(as_text=True)
    assert _runs() == [] and get_queue().count == 0


def test_unavailable_network_is_refused_with_its_reason(start_run, make_dataset, logged_in):
    from app.ml.architectures import list_architectures

    missing = [a for a in list_architectures() if not a.available]
    if not missing:
        pytest.skip("every architecture is available here")
    dataset = make_dataset(logged_in.user)
    response = start_run(dataset.id, architecture=missing[0].name, mode="quick")
    assert response.status_code == 422
    assert "cannot be used right now" in response.get_data(as_text=True) and _runs() == []


def test_run_started_from_the_page_succeeds_in_a_worker(app, start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    response = start_run(dataset.id)
    assert response.status_code == 302
    run = _runs()[0]
    assert run.status == "queued" and run.job_id in get_queue().get_job_ids()
    assert run.snapshot["classes"] == ["red", "blue"] and run.snapshot["total"] == 12
    planned = run.snapshot["counts"]
    assert [sum(c) for c in planned] == [6, 6] and "samples" not in run.snapshot
    assert samples.has_frozen(run.id) and samples.load(run.id)[0] == []  # the job prepares the list
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "number 1</strong> in the queue" in page and 'hx-trigger="every 1s"' in page

    run_jobs(app)
    db.session.expire_all()
    run = db.session.get(TrainingRun, run.id)
    assert run.status == "succeeded", (run.error, run.log)
    rows, split = samples.load(run.id)
    assert len(rows) == 12 and sorted(sum(split.values(), [])) == list(range(12)) and not samples.has_frozen(run.id)
    assert run.snapshot["counts"] == planned  # the plan made in the request is what the split gave
    assert "Preparing the list of 12 images…" in [entry["message"] for entry in run.log]
    assert len(run.history) == 2 and run.metrics["count"] == len(split["test"])
    # the per-image validation and test results are stored once, at the end, outside metrics; the
    # threshold curve is made on the validation images only
    assert "predictions" not in run.metrics and len(run.test_predictions) == len(split["test"])
    assert [p["image_id"] for p in run.val_predictions] == [rows[i][0] for i in split["val"]]
    assert run.threshold_curve == curve_grid(run.val_predictions, split="val")
    assert run.metrics["validation"]["count"] == len(split["val"])
    wrong = [p for p in run.test_predictions if p["true"] != p["predicted"]]
    assert run.metrics["misclassified_count"] == len(wrong) == len(run.metrics["misclassified"])
    assert run.heartbeat_at and run.started_at and run.finished_at
    messages = [line["message"] for line in run.log]
    assert any(m.startswith("Epoch 2/2") for m in messages) and messages[-1].startswith("Finished")
    page = logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    assert "big-number" in page and "test images" in page and 'hx-trigger="every 1s"' not in page
    assert "<svg" in page and "polyline" in page
    _check_downloads(logged_in, run)
    _check_expert_views(logged_in, run, rows, split)
    _check_train_more(app, logged_in, run)


def _check_expert_views(client, run, rows, split):
    """The history table and CSV, the split page and CSV."""
    page = client.get(f"/models/{run.id}").get_data(as_text=True)
    assert 'id="history"' in page and "LR head" in page and "95% confidence interval" in page
    with client.get(f"/models/{run.id}/history.csv") as response:
        lines = response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc") and "data_wait" in lines[0]
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2"]
    with client.get(f"/models/{run.id}/split.csv") as response:
        table = [line.split(",") for line in response.get_data(as_text=True).splitlines()]
    assert table[0] == ["position", "image_id", "filename", "class", "part"] and len(table) == 13
    assert [int(r[1]) for r in table[1:] if r[4] == "test"] == [rows[i][0] for i in split["test"]]
    assert all(r[2].endswith(".png") for r in table[1:])
    html = client.get(f"/models/{run.id}/split?part=val").get_data(as_text=True)
    assert sorted(re.findall(r'data-image-id="(\d+)"', html)) == sorted(str(rows[i][0]) for i in split["val"])


def _check_train_more(app, client, run):
    """Train more: a new run from the checkpoint, same frozen samples, epochs numbered on."""
    refused = client.post(f"/models/{run.id}/train-more", data={"epochs": "0"})
    assert refused.status_code == 422 and 'id="train-more"' in refused.get_data(as_text=True)  # the model's page
    assert flashes(refused.data) == ["Give the number of extra epochs: a whole number from 1 to 1000."]
    response = client.post(f"/models/{run.id}/train-more", data={"epochs": "2"})
    assert response.status_code == 302
    more = db.session.scalars(select(TrainingRun).where(TrainingRun.continued_from_id == run.id)).one()
    assert more.options["epochs"] == 2 and samples.load(more.id) == samples.load(run.id)
    assert client.post(f"/models/{run.id}/delete").status_code == 409  # its checkpoint is still needed
    run_jobs(app)
    db.session.expire_all()
    more = db.session.get(TrainingRun, more.id)
    start = run.metrics["best_epoch"]
    assert more.status == "succeeded", (more.error, more.log)
    assert [row["epoch"] for row in more.history] == [start + 1, start + 2] and more.metrics["start_epoch"] == start
    assert f"model #{run.id}</a> after its epoch {start}" in client.get(f"/models/{more.id}").get_data(as_text=True)


def _download(client, run, kind) -> bytes:
    with client.get(f"/models/{run.id}/download/{kind}") as response:  # closes the sent file
        assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
        return response.data


def _check_downloads(client, run):
    import warnings

    import onnxruntime
    import torch

    state = torch.load(io.BytesIO(_download(client, run, "weights")), map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and any(k.startswith("head") for k in state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, still what users load
        scripted = torch.jit.load(io.BytesIO(_download(client, run, "torchscript")))
    card = json.loads(_download(client, run, "card"))
    assert card["classes"] == ["red", "blue"]
    size = 32
    x = torch.rand(1, 3, size, size)
    logits = scripted(x)
    assert logits.shape == (1, 2)
    session = onnxruntime.InferenceSession(_download(client, run, "onnx"))
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert out.shape == (1, 2)
    assert client.get(f"/models/{run.id}/download/secrets").status_code == 404
    checkpoint = torch.load(io.BytesIO(_download(client, run, "checkpoint")), map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "options"} <= checkpoint.keys()
    assert b"def preprocess(" in _download(client, run, "preprocess")
    with zipfile.ZipFile(io.BytesIO(_download(client, run, "zip"))) as zf:
        names = {name.split("/", 1)[1]: name for name in zf.namelist()}
        assert set(card["files"].values()) | {"README.txt"} == names.keys()  # the card's names, no checkpoint
        assert zf.read(names[card["files"]["onnx"]]) == _download(client, run, "onnx")


def test_every_bad_setting_is_marked_at_once_and_the_values_are_kept(start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    response = start_run(dataset.id, epochs="-3", lr="-1", val_fraction="0.9", weight_decay="lots")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(r'<details class="advanced"\s+open', html)
    for name, message in (("epochs", "Epochs must be between 1 and 1000"), ("lr", "Learning rate must be above 0"),
                          ("val_fraction", "Validation share must be between 0 and 0.8"),
                          ("weight_decay", "Not a valid float")):
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
        assert 'aria-invalid="true"' in tag and f'aria-describedby="{name}-error' in tag, tag
        assert re.search(rf'id="{name}-error">[^<]*{message}', html), name
    assert re.search(r'<input[^>]*name="epochs"[^>]*value="-3"', html)  # what was typed stays
    assert re.search(r'<input[^>]*name="lr"[^>]*value="-1', html)
    assert "these 4 fields" in html  # the validation share alone is out of range: the test share is fine
    assert _runs() == [] and get_queue().count == 0


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999"])
def test_a_seed_out_of_range_is_marked_on_its_field_and_the_form_keeps_the_rest(start_run, make_dataset, logged_in,
                                                                                 seed):
    dataset = make_dataset(logged_in.user)
    response = start_run(dataset.id, seed=seed, epochs="3", name="keep me")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(r'id="seed-error">Random seed must be a whole number from 0 to 4,294,967,295\.', html)
    assert "Please fix this field" in html
    assert re.search(r'<input[^>]*name="epochs"[^>]*value="3"', html) and 'value="keep me"' in html
    assert _runs() == [] and get_queue().count == 0


def test_a_share_out_of_range_is_said_once_under_its_own_field(start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    html = start_run(dataset.id, val_fraction="-0.1", test_fraction="0.15").get_data(as_text=True)
    assert "Please fix this field" in html and html.count("Validation share must be between 0 and 0.8.") == 2
    assert re.search(r'id="val_fraction-error">Validation share must be between 0 and 0.8\.<', html)
    assert 'id="test_fraction-error"' not in html
