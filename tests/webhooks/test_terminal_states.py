"""Every way a run or an import ends tells the webhooks, as a normal finish does: runs failed by the stale-run
reaper, imports cancelled while queued, failed by the stale-import reaper or never started."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from app.blueprints.webhooks import services
from app.extensions import db
from app.models import Dataset, Import, utcnow
from tests.webhooks.conftest import run_webhook_jobs


def delivered(receiver) -> dict[int, dict]:
    """{object id: its document} of every delivery received, by the event's object key."""
    found = {}
    for request in receiver.requests:
        body = json.loads(request["body"])
        key = {"run.finished": "run", "import.finished": "import"}[body["event"]]
        found[body[key]["id"]] = body[key]
    return found


def test_runs_failed_by_the_reaper_are_delivered(app, alice, receiver, make_run):
    from app.blueprints.training import lifecycle

    services.create_webhook(alice, receiver.url, ["run.finished"])
    old = utcnow() - timedelta(hours=1)
    dead = make_run(alice)  # running, its worker gone: no heartbeat anywhere since long ago
    dead.started_at = old
    never_queued = make_run(alice, status="queued")
    never_queued.created_at = utcnow() - lifecycle.ORPHAN_AFTER * 2
    alive = make_run(alice)  # started just now: kept
    db.session.commit()
    assert lifecycle.reap_stale_runs(60) == 2
    run_webhook_jobs(app)
    runs = delivered(receiver)
    assert set(runs) == {dead.id, never_queued.id} and alive.id not in runs
    assert {doc["status"] for doc in runs.values()} == {"failed"}  # the state the reaper committed


@pytest.fixture
def dataset(alice):
    found = Dataset(owner_id=alice.id, name="Colours", description="")
    db.session.add(found)
    db.session.commit()
    return found


def make_import(dataset, **columns) -> Import:
    imp = Import(dataset_id=dataset.id, user_id=dataset.owner_id, kind="zip", source_name="a.zip", total=3,
                 errors=[], **{"status": "queued", **columns})
    db.session.add(imp)
    db.session.commit()
    return imp


def test_an_import_cancelled_while_queued_is_delivered(app, alice, receiver, dataset):
    from app.blueprints.datasets.images.imports import cancel_import

    services.create_webhook(alice, receiver.url, ["import.finished"])
    imp = make_import(dataset, job_id="import-1-gone")
    assert cancel_import(alice, dataset, imp.id).status == "cancelled"
    run_webhook_jobs(app)
    assert delivered(receiver)[imp.id]["status"] == "cancelled"


def test_a_running_import_asked_to_cancel_is_left_to_its_job(app, alice, receiver, dataset):
    from app.blueprints.datasets.images.imports import cancel_import

    services.create_webhook(alice, receiver.url, ["import.finished"])
    imp = make_import(dataset, status="running", started_at=utcnow(), heartbeat_at=utcnow())
    assert cancel_import(alice, dataset, imp.id).status == "running"
    run_webhook_jobs(app)
    assert receiver.requests == []  # not finished yet: the job tells the webhooks when it stops


def test_imports_failed_by_the_reaper_are_delivered(app, alice, receiver, dataset):
    from app.blueprints.datasets.images.imports import reap_stale_imports

    services.create_webhook(alice, receiver.url, ["import.finished"])
    old = utcnow() - timedelta(minutes=10)
    dead = make_import(dataset, status="running", started_at=old, heartbeat_at=old)
    lost = make_import(dataset, job_id="import-2-gone", created_at=old)
    alive = make_import(dataset, status="running", started_at=utcnow(), heartbeat_at=utcnow())
    assert reap_stale_imports(60) == 2
    run_webhook_jobs(app)
    imports = delivered(receiver)
    assert set(imports) == {dead.id, lost.id} and alive.id not in imports
    assert {doc["status"] for doc in imports.values()} == {"failed"}


def test_an_import_that_could_not_be_started_is_delivered(app, alice, receiver, dataset):
    from app.blueprints.datasets.images.imports import launch_import

    services.create_webhook(alice, receiver.url, ["import.finished"])
    imp = make_import(dataset)

    def move(folder):
        raise OSError("disk full")

    with pytest.raises(OSError):
        launch_import(imp, move)
    run_webhook_jobs(app)
    assert delivered(receiver)[imp.id]["status"] == "failed"
