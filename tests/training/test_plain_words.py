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
