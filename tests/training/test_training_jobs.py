"""The training lifecycle service and its thin RQ job against real Redis and real workers: cancel, worker
killed, retry, real subprocess."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from app.blueprints.training import lifecycle, samples
from app.extensions import db, get_queue
from app.jobs import is_beating
from app.models import TrainingRun, utcnow
from tests.conftest import run_jobs
from tests.datasets.conftest import expire_undo
from tests.test_jobs import worker_env

ROOT = Path(__file__).resolve().parents[2]


def _only_run() -> TrainingRun:
    db.session.expire_all()
    return db.session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())).first()


def test_started_run_is_queued_as_the_training_task(app, start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    job = get_queue().fetch_job(run.job_id)
    assert job.func_name == "app.jobs.training.train_run" and job.args == (run.id,)
    assert job.description == f"train run {run.id}" and run.job_id.startswith(f"train-{run.id}-")
    assert job.timeout == app.config["TRAIN_JOB_TIMEOUT"] and job.result_ttl == app.config["TRAIN_RESULT_TTL"]


def test_the_job_skips_a_run_that_is_not_queued_any_more(app, start_run, make_dataset, logged_in):
    from app.jobs.training import train_run

    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    run.cancel_requested = True
    db.session.commit()
    assert train_run(run.id) == {"run_id": run.id, "status": "skipped"}
    assert _only_run().status == "queued" and _only_run().started_at is None


def test_cancel_queued_run_leaves_the_queue(app, start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    response = logged_in.post(f"/models/{run.id}/cancel", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "badge-cancelled" in response.get_data(as_text=True)
    assert get_queue().count == 0
    run_jobs(app)  # nothing left to run
    run = _only_run()
    assert run.status == "cancelled" and run.started_at is None
    assert "before it started" in run.log[-1]["message"]


def test_cancel_running_run_stops_at_next_step(app, start_run, make_dataset, logged_in, monkeypatch):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id, epochs="50")
    run_id = _only_run().id
    monkeypatch.setattr(lifecycle, "CANCEL_CHECK_S", 0.0)
    real_call = lifecycle.RunReporter.__call__

    def user_clicks_cancel_once_training(self, progress):
        if progress.get("phase") == "training" and progress.get("epoch") == 2:
            # what cancel_run does for a running run, committed from "another" request
            db.session.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(cancel_requested=True))
            db.session.commit()
        real_call(self, progress)

    monkeypatch.setattr(lifecycle.RunReporter, "__call__", user_clicks_cancel_once_training)
    run_jobs(app)
    run = _only_run()
    assert run.status == "cancelled" and run.finished_at is not None
    assert 1 <= len(run.history) <= 3  # stopped within a step of the request, not after 50 epochs
    assert run.log[-1]["message"] == "Training was cancelled."


def test_cancel_running_from_the_page_sets_the_flag(start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    db.session.execute(update(TrainingRun).where(TrainingRun.id == run.id).values(status="running"))
    db.session.commit()
    assert logged_in.post(f"/models/{run.id}/cancel").status_code == 302
    run = _only_run()
    assert run.cancel_requested and run.status == "running"
    assert "Stopping after the current step" in logged_in.get(f"/models/{run.id}").get_data(as_text=True)


def test_retry_reuses_the_frozen_samples_and_refuses_a_broken_list(start_run, make_dataset, logged_in):
    from app.models import RunSample

    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    samples.prepare(run, lambda done, total: None, lambda: False)  # as its job did before it failed
    run.status = "failed"
    db.session.commit()
    make_dataset(logged_in.user, {"red": 1, "blue": 1}, name="changed since")  # unrelated changes
    assert logged_in.post(f"/models/{run.id}/retry").status_code == 302
    retry = _only_run()
    assert retry.id != run.id and samples.load(retry.id) == samples.load(run.id)
    assert retry.snapshot == run.snapshot and retry.job_id in get_queue().get_job_ids()
    db.session.execute(delete(RunSample).where(RunSample.run_id == run.id, RunSample.position >= 5))
    db.session.commit()
    response = logged_in.post(f"/models/{run.id}/retry")
    assert response.status_code == 422 and "incomplete" in response.get_data(as_text=True)
    assert _only_run().id == retry.id  # nothing half-made is left: no run, no copied sample rows
    assert db.session.scalar(select(func.count()).select_from(RunSample)) == 12 + 5


def test_quick_mode_chooses_its_head_and_keeps_the_datasets_features(app, start_run, make_dataset, logged_in):
    from app.models import Image
    from app.storage import get_storage

    dataset = make_dataset(logged_in.user, {"red": 6, "blue": 6})
    start_run(dataset.id, architecture="efficientnet_lite0", mode="quick", epochs="5", image_size="64",
              batch_size=None, head="auto")
    run_jobs(app)
    run = _only_run()
    assert run.status == "succeeded", run.error
    stats = run.metrics["embedding_stats"]
    assert run.metrics["accuracy"] >= 0.5 and (stats["computed"], stats["runtime"]) == (12, "onnx")
    assert any("Computing image features" in line["message"] for line in run.log)
    choice = run.metrics["head_choice"]
    assert choice["automatic"] and set(choice["candidates"]) == {"linear", "mlp"}
    assert any(line["message"] == choice["reason"] for line in run.log)
    page = logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    shown = {"linear": "linear", "mlp": "MLP"}[choice["chosen"]]  # the head's name, not its identifier
    assert 'id="head-choice"' in page and f"automatic → {shown}" in page
    # "Settings used" lists what quick mode applied: the head, not crops, mirroring or momentum
    assert ">Head</th>" in page and ">Random crops</th>" not in page and ">Mirror images</th>" not in page
    assert ">Momentum</th>" not in page and ">Backbone learning-rate factor</th>" not in page

    storage = get_storage()
    assert list(storage.feature_dir(dataset.id).rglob("seg-*.npy")) and list(storage.backbone_dir.glob("*.onnx"))
    image_id = db.session.scalars(select(Image.id).where(Image.dataset_id == dataset.id)).first()
    logged_in.post(f"/datasets/{dataset.id}/images/delete", data={"image_ids": [image_id]})
    expire_undo()  # the features of a deleted image are forgotten once its delete can no longer be undone
    assert list(storage.feature_dir(dataset.id).rglob("forget-*.txt"))
    start_run(dataset.id, architecture="efficientnet_lite0", mode="quick", epochs="5", image_size="64",
              batch_size=None, head="linear", name="again")
    run_jobs(app)
    again = _only_run()
    assert again.status == "succeeded", again.error
    assert (again.metrics["embedding_stats"]["computed"], again.metrics["embedding_stats"]["reused"]) == (0, 11)
    assert not again.metrics["head_choice"]["automatic"]
    dataset_id = dataset.id
    logged_in.post(f"/datasets/{dataset_id}/delete")
    run_jobs(app)  # datasets are deleted in the background
    assert not storage.feature_dir(dataset_id).exists()


def test_queued_run_whose_job_vanished_is_failed_by_the_reaper(start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    get_queue().empty()
    run.created_at = run.created_at.replace(year=2000)
    db.session.commit()
    assert lifecycle.reap_stale_runs(60) == 1
    assert _only_run().status == "failed" and "disappeared from the queue" in _only_run().error


def test_running_run_with_an_old_database_heartbeat_is_kept_while_its_worker_beats(start_run, make_dataset,
                                                                                 logged_in):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    run.status, run.heartbeat_at = "running", utcnow().replace(year=2000)  # its writes wait on a busy database
    db.session.commit()
    with lifecycle.heartbeat(run.id):  # ...but its process is alive and beating
        assert lifecycle.reap_stale_runs(60) == 0
    assert _only_run().status == "running"
    assert lifecycle.reap_stale_runs(60) == 1  # no heartbeat anywhere: the worker is gone
    assert _only_run().status == "failed" and "stopped unexpectedly" in _only_run().error


def test_reaper_leaves_a_run_whose_heartbeat_arrives_while_it_decides(start_run, make_dataset, logged_in,
                                                                     monkeypatch):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    run.status, run.heartbeat_at = "running", utcnow().replace(year=2000)
    db.session.commit()
    run_id = run.id

    def worker_writes_its_heartbeat_now(name):  # e.g. the database was locked until this moment
        db.session.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(heartbeat_at=utcnow()))
        return False

    monkeypatch.setattr(lifecycle, "is_beating", worker_writes_its_heartbeat_now)
    assert lifecycle.reap_stale_runs(60) == 0
    assert _only_run().status == "running"


def test_queued_run_that_never_got_a_job_is_failed_after_a_while(start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    run.job_id = None  # its web process died while writing the sample list
    db.session.commit()
    assert lifecycle.reap_stale_runs(60) == 0  # it may still be on its way
    run.created_at = utcnow() - lifecycle.ORPHAN_AFTER * 2
    db.session.commit()
    assert lifecycle.reap_stale_runs(60) == 1
    assert _only_run().status == "failed" and "never queued" in _only_run().error


def _explode():
    raise RuntimeError("the worker's job process died")


def test_running_run_whose_job_failed_in_rq_is_failed_by_the_reaper(app, start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    get_queue().empty()
    failed_job = get_queue().enqueue(_explode, job_timeout=30, result_ttl=60, failure_ttl=60)
    run_jobs(app)
    run = _only_run()
    run.status, run.job_id = "running", failed_job.id
    run.heartbeat_at = utcnow()  # fresh heartbeat: only RQ's "failed" tells the worker is gone
    db.session.commit()
    assert lifecycle.reap_stale_runs(60) == 1
    assert _only_run().status == "failed"


@pytest.mark.slow
def test_run_in_a_real_worker_process(app, start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    done = subprocess.run([sys.executable, "worker.py", "--burst"], cwd=ROOT, env=worker_env(app),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    run = _only_run()
    assert run.status == "succeeded", (run.error, done.stderr[-2000:])
    assert "queued -> running" in done.stderr and "running -> succeeded" in done.stderr
    assert "preloaded the ML libraries" in done.stderr  # imported once, before the job was forked
    assert run.worker_name


@pytest.mark.slow
def test_worker_killed_mid_run_is_failed_and_can_be_retried(app, start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id, epochs="1000", early_stopping_patience="")
    env = {**worker_env(app), "WORKER_CLASS": "simple", "TRAIN_STALE_SECONDS": "2"}
    worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run = _only_run()
            if run.status == "running" and run.history:
                break
            time.sleep(0.3)
        assert run.status == "running", "the worker never started the run"
        assert is_beating(f"run-{run.id}")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    assert lifecycle.reap_stale_runs(max_age_s=30) == 0  # a fresh heartbeat: not reaped yet
    time.sleep(2.5)  # the worker's Redis heartbeat (TRAIN_STALE_SECONDS=2 there) lapses
    assert not is_beating(f"run-{run.id}")
    assert lifecycle.reap_stale_runs(max_age_s=1) == 1
    run = _only_run()
    assert run.status == "failed" and "stopped unexpectedly" in run.error
    page = logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    assert "stopped unexpectedly" in page and "Retry with the same settings" in page
    assert logged_in.post(f"/models/{run.id}/retry").status_code == 302
    retry = _only_run()
    assert retry.id != run.id and retry.status == "queued" and retry.snapshot == run.snapshot
    assert samples.load(retry.id) == samples.load(run.id) and len(samples.load(run.id)[0]) == 12
    assert retry.options == run.options and retry.job_id in get_queue().get_job_ids()


def test_a_viewer_cannot_cancel_someone_elses_run_but_an_editor_can(app, start_run, make_dataset, logged_in,
                                                                   make_user):
    from app.models import DatasetShare
    from tests.conftest import login

    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    viewer, editor = make_user("vic"), make_user("eddie")
    db.session.add_all([DatasetShare(dataset_id=dataset.id, user_id=viewer.id, role="viewer"),
                        DatasetShare(dataset_id=dataset.id, user_id=editor.id, role="editor")])
    db.session.commit()
    as_viewer, as_editor = app.test_client(), app.test_client()
    login(as_viewer, "vic")
    login(as_editor, "eddie")
    refused = as_viewer.post(f"/models/{run.id}/cancel")
    assert refused.status_code == 403 and b"editor" in refused.data
    assert _only_run().status == "queued"
    assert as_editor.post(f"/models/{run.id}/cancel").status_code == 302
    assert _only_run().status == "cancelled"


def test_a_retry_whose_stored_options_no_longer_apply_is_refused_in_the_readers_language(
        start_run, make_dataset, logged_in, pretend_translated):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    run.status, run.options = "failed", {**run.options, "schedule": "wobbly"}  # e.g. written by an older version
    db.session.commit()
    pretend_translated("pt_BR", {"Unknown schedule %(value)s; choose one of %(choices)s.":
                                 "Agenda desconhecida %(value)s; escolha entre %(choices)s."})
    response = logged_in.post(f"/models/{run.id}/retry", headers={"Accept-Language": "pt-BR"})
    assert response.status_code == 422
    assert "Agenda desconhecida &#39;wobbly&#39;" in response.get_data(as_text=True)
    assert _only_run().id == run.id  # nothing was queued


def test_a_retry_of_a_run_stored_with_a_seed_out_of_range_is_refused_with_the_seed_rule(
        start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id)
    run = _only_run()
    run.status, run.options = "failed", {**run.options, "seed": 1e20}  # what an older version let through
    db.session.commit()
    response = logged_in.post(f"/models/{run.id}/retry")
    assert response.status_code == 422
    assert "Random seed must be a whole number from 0 to 4,294,967,295." in response.get_data(as_text=True)
    assert _only_run().id == run.id


def test_retries_get_names_of_their_own(start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user)
    start_run(dataset.id, name="Cats")
    first = _only_run()
    names = []
    for retried in (first.id, first.id, None):  # the original twice, then the latest retry
        db.session.execute(update(TrainingRun).values(status="failed"))
        db.session.commit()
        target = retried or db.session.scalar(select(func.max(TrainingRun.id)))
        assert logged_in.post(f"/models/{target}/retry").status_code == 302
        names.append(db.session.scalar(select(TrainingRun.name).order_by(TrainingRun.id.desc()).limit(1)))
    assert names == ["Cats (retry)", "Cats (retry) (2)", "Cats (retry) (3)"]
