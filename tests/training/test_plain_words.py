"""What users read on the training pages: plain sentences, no server internals (issue #16)."""
from __future__ import annotations

from app.extensions import db
from app.models import utcnow
from tests.conftest import login
from tests.training.test_pages import make_run

INTERNALS = ("/root/", ".cache/torch", ".pth", "Docker", "WEIGHTS_DIR", "Traceback")


def test_the_train_form_says_plainly_that_a_network_is_missing(app, client, make_user, make_dataset):
    user, admin = make_user("user"), make_user("boss", is_admin=True)
    dataset = make_dataset(user)
    login(client, "user")
    html = client.get(f"/datasets/{dataset.id}/train").get_data(as_text=True)
    assert "Not installed on this server — an admin can add it." in html  # WEIGHTS_DIR is empty in tests
    assert not [word for word in INTERNALS if word in html] and "Admin → Networks" not in html
    client.post("/logout")
    from app.blueprints.datasets.sharing import share_dataset

    share_dataset(dataset, "boss", "viewer")
    login(client, "boss")
    assert "Admin → Networks" in client.get(f"/datasets/{dataset.id}/train").get_data(as_text=True)
    assert admin.is_admin


def test_an_unexpected_failure_shows_a_sentence_and_details_only_to_admins(app, client, make_user, make_dataset):
    from app.blueprints.datasets.sharing import share_dataset
    from app.blueprints.training.lifecycle import finish_failed

    user, _ = make_user("user"), make_user("boss", is_admin=True)
    dataset = make_dataset(user)
    share_dataset(dataset, "boss", "viewer")
    run = make_run(dataset, user, status="running", started_at=utcnow(), heartbeat_at=utcnow())
    finish_failed(run, RuntimeError("cannot open /root/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth"))
    db.session.expire_all()
    login(client, "user")
    page = client.get(f"/models/{run.id}").get_data(as_text=True)
    assert "unexpected problem on the server" in page
    assert not [word for word in INTERNALS if word in page]
    client.post("/logout")
    login(client, "boss")
    page = client.get(f"/models/{run.id}").get_data(as_text=True)
    assert "Details for administrators" in page and "resnet18-f37072fd.pth" in page


def test_no_queued_banner_outlives_the_run(start_run, make_dataset, logged_in):
    from app.blueprints.training.services import cancel_run
    from app.models import TrainingRun

    dataset = make_dataset(logged_in.user)
    response = start_run(dataset.id)
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "is queued." not in page and "Waiting for a free worker" in page  # the live card says it
    run = db.session.scalars(db.select(TrainingRun)).one()
    cancel_run(logged_in.user, run.id)
    partial = logged_in.get(f"/models/{run.id}/progress", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert '<div id="flashes" class="flashes" hx-swap-oob="true"></div>' in partial  # old messages go
    assert "Cancelled." in partial


def test_results_say_the_score_first_and_name_things_by_their_names(logged_in, make_dataset):
    from tests.training.test_pages import METRICS

    dataset = make_dataset(logged_in.user)
    run = make_run(dataset, logged_in.user, metrics={**METRICS, "seconds": 12.0},
                   options={"optimizer": "adamw", "schedule": "onecycle", "mode": "quick",
                            "architecture": "efficientnet_lite0"})
    run.architecture, run.mode = "efficientnet_lite0", "quick"
    db.session.commit()
    page = logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    assert page.index('id="run-headline"') < page.index('id="run-progress"') < page.index('class="charts"')
    assert "Correct on <strong>9 of 12</strong> test images" in page
    assert "EfficientNet-Lite0 · Quick" in page
    for shown in (">EfficientNet-Lite0</td>", ">Quick</td>", ">AdamW</td>", ">One-cycle (warm up, then decrease)</td>"):
        assert shown in page, shown
    assert ">efficientnet_lite0<" not in page and ">adamw<" not in page
    listing = logged_in.get("/models").get_data(as_text=True)
    assert "EfficientNet-Lite0 <small class=\"muted\">Quick</small>" in listing
    # a run that finishes while watched: its results answer carries the headline out-of-band
    results = logged_in.get(f"/models/{run.id}/results", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert '<section id="run-headline" aria-live="polite" hx-swap-oob="true">' in results


def test_compare_opens_with_a_plain_verdict(logged_in, make_dataset):
    from tests.training.test_pages import METRICS

    dataset = make_dataset(logged_in.user)
    a = make_run(dataset, logged_in.user, name="A", metrics={**METRICS, "seconds": 10.0,
                                                            "validation": {"accuracy": 0.80}})
    b = make_run(dataset, logged_in.user, name="B", metrics={**METRICS, "seconds": 50.0,
                                                            "validation": {"accuracy": 0.83}})
    page = logged_in.get(f"/models/compare?a={a.id}&b={b.id}").get_data(as_text=True)
    assert "“B” is 3 points more accurate on the validation images; “A” trained 5× faster." in page
    running = make_run(dataset, logged_in.user, name="C", status="running")
    page = logged_in.get(f"/models/compare?a={a.id}&b={running.id}").get_data(as_text=True)
    assert "“C” has no results yet" in page


def test_a_dataset_not_ready_gets_what_is_missing_instead_of_the_form(app, logged_in, make_dataset):
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.services import create_dataset

    empty = create_dataset(logged_in.user.id, "Empty")
    page = logged_in.get(f"/datasets/{empty.id}/train").get_data(as_text=True)
    assert "This dataset has no images yet." in page and 'id="run-form"' not in page
    assert f'href="/datasets/{empty.id}#upload">Upload images →' in page
    assert "Train a model: upload images first" in logged_in.get(f"/datasets/{empty.id}").get_data(as_text=True)

    one_class = make_dataset(logged_in.user, {"red": 6}, name="One class")
    page = logged_in.get(f"/datasets/{one_class.id}/train").get_data(as_text=True)
    assert "needs at least two" in page and f'href="/datasets/{one_class.id}/classes">Add classes →' in page

    add_class(one_class.id, "blue")
    page = logged_in.get(f"/datasets/{one_class.id}/train").get_data(as_text=True)
    assert "At least two classes need labeled images; 1 has any" in page
    assert f'href="/datasets/{one_class.id}/label?filter=unlabeled">Label images →' in page
    label_page = logged_in.get(f"/datasets/{one_class.id}/label").get_data(as_text=True)
    assert "Train a model: label images first" in label_page

    few = make_dataset(logged_in.user, {"red": 6, "blue": 2}, name="Few")
    page = logged_in.get(f"/datasets/{few.id}/train").get_data(as_text=True)
    assert "these have fewer: “blue” (2)" in page

    ready = make_dataset(logged_in.user, {"red": 3, "blue": 3}, name="Ready")
    assert 'id="run-form"' in logged_in.get(f"/datasets/{ready.id}/train").get_data(as_text=True)
    assert "Train a model →" in logged_in.get(f"/datasets/{ready.id}").get_data(as_text=True)
