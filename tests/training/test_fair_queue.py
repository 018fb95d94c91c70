"""The fair training queue: runs of several people alternate on one worker, a queued run always keeps a
waiting job, and one person's trainings queued or running at once are limited."""
from __future__ import annotations

from rq.job import Job
from sqlalchemy import select

from app.extensions import db, get_queue, get_redis
from app.models import TrainingRun, User
from tests.conftest import login, run_jobs
from tests.training.conftest import TINY

QUICK = {**TINY, "epochs": "1"}


def _queue(user, dataset_id: int, name: str) -> TrainingRun:
    from app.blueprints.training.services import start_run

    values = {k: v for k, v in QUICK.items() if k not in ("name", "architecture", "mode")}
    values.update(hflip=True, random_resized_crop=True)  # what the form makes of its checkboxes
    return start_run(user, dataset_id, name, QUICK["architecture"], QUICK["mode"], values)


def _runs() -> list[TrainingRun]:
    db.session.expire_all()
    return list(db.session.scalars(select(TrainingRun).order_by(TrainingRun.id)))


def test_two_users_runs_alternate_on_a_single_worker(app, make_dataset, logged_in, make_user):
    alice, bob = logged_in.user, make_user("bob")
    theirs = make_dataset(bob, name="Bob's colours")
    ours = make_dataset(alice)
    for name in ("a1", "a2", "a3"):  # alice queues first: first-in, first-out would run all of hers first
        _queue(alice, ours.id, name)
    for name in ("b1", "b2"):
        _queue(bob, theirs.id, name)
    assert get_queue().count == 5

    run_jobs(app)  # one worker

    runs = _runs()
    assert [r.status for r in runs] == ["succeeded"] * 5
    order = [r.name for r in sorted(runs, key=lambda r: r.started_at)]
    assert order == ["a1", "b1", "a2", "b2", "a3"]
    # every run is named by the job that trained it, and RQ agrees it finished
    assert all(Job.fetch(r.job_id, connection=get_redis()).get_status() == "finished" for r in runs)


def test_a_started_job_hands_its_place_to_the_run_it_did_not_take(app, make_dataset, logged_in, make_user):
    from app.blueprints.training.scheduling import claim_fair

    alice, bob = logged_in.user, make_user("bob")
    first = _queue(alice, make_dataset(alice).id, "a1")
    db.session.execute(TrainingRun.__table__.update().where(TrainingRun.id == first.id)
                       .values(status="succeeded", started_at=db.func.current_timestamp()))
    db.session.commit()
    a2 = _queue(alice, first.dataset_id, "a2")
    b1 = _queue(bob, make_dataset(bob, name="b").id, "b1")
    a2_job, b1_job = a2.job_id, b1.job_id

    taken = claim_fair(a2.id, a2_job, "w1")  # a2's job starts, but bob has not been served yet
    assert taken.id == b1.id and taken.status == "running" and taken.job_id == a2_job
    waiting = db.session.get(TrainingRun, a2.id)
    assert waiting.status == "queued" and waiting.job_id == b1_job
    assert b1_job in get_queue().job_ids  # a2 keeps a job that is still waiting in the queue


def test_the_active_run_limit_refuses_with_a_message_until_an_admin_raises_it(app, make_dataset, logged_in):
    app.config["QUOTA_ACTIVE_RUNS"] = 2
    dataset = make_dataset(logged_in.user)
    for n in range(2):
        assert logged_in.post(f"/datasets/{dataset.id}/train", data={**QUICK, "name": f"r{n}"}).status_code == 302
    refused = logged_in.post(f"/datasets/{dataset.id}/train", data={**QUICK, "name": "r2"})
    assert refused.status_code == 422
    assert "You already have 2 trainings queued or running, your limit" in refused.data.decode()
    assert len(_runs()) == 2 and get_queue().count == 2

    # an admin raises this user's limit on the users page
    from tests.conftest import CsrfClient  # noqa: F401  (the app's test client class)

    admin = User(username="root", is_admin=True)
    admin.set_password("correct horse")
    db.session.add(admin)
    db.session.commit()
    admin_client = app.test_client()
    login(admin_client, "root")
    response = admin_client.post(f"/admin/users/{logged_in.user.id}/limits",
                                 data={"active_runs": "3", "storage_mb": "", "images": "", "datasets": "",
                                       "models": ""})
    assert response.status_code in (200, 302)
    assert logged_in.post(f"/datasets/{dataset.id}/train", data={**QUICK, "name": "r2"}).status_code == 302
    assert len(_runs()) == 3


def test_a_finished_run_frees_its_place(app, make_dataset, logged_in):
    app.config["QUOTA_ACTIVE_RUNS"] = 1
    dataset = make_dataset(logged_in.user)
    _queue(logged_in.user, dataset.id, "first")
    run_jobs(app)
    assert _runs()[0].status == "succeeded"
    assert logged_in.post(f"/datasets/{dataset.id}/train", data={**QUICK, "name": "second"}).status_code == 302
