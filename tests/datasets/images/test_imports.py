"""Background imports: the 202 + status_url contract, progress, cancel, the reaper, large batches of loose
files, `flask import-folder`, and pages that keep answering while a long import runs (real worker)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from rq.job import Job
from rq.exceptions import NoSuchJobError
from sqlalchemy import func, select

from app.extensions import db, get_redis
from app.models import Image, Import, Label, utcnow
from app.filestore import import_prefix
from app.storage import get_storage
from tests.conftest import child_env, run_jobs, stored_keys
from tests.datasets.conftest import make_zip, png, upload
from tests.ops.conftest import ROOT, wait_until


def _images(dataset_id: int) -> int:
    return db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset_id))


def test_zip_upload_answers_202_and_the_status_url_tells_the_progress(app, logged_in, dataset):
    entries = {f"cats/{i}.png": png(i) for i in range(5)} | {"cats/dup.png": png(0)}
    entries |= {f"junk/{i}.txt": b"not an image" for i in range(55)}
    response = upload(logged_in, dataset.id, [("pets.zip", make_zip(entries))])
    assert response.status_code == 202
    started = response.json["import"]
    assert set(started) >= {"id", "status_url"}
    waiting = logged_in.get(started["status_url"]).json
    assert (waiting["status"], waiting["total"], waiting["processed"], waiting["added"]) == ("queued", 61, 0, 0)
    assert stored_keys(import_prefix(started["id"]))  # the upload is stored, not kept in memory
    run_jobs(app)
    done = logged_in.get(started["status_url"]).json
    assert {k: done[k] for k in ("status", "total", "processed", "added", "duplicates", "error_count")} == {
        "status": "finished", "total": 61, "processed": 61, "added": 5, "duplicates": 1, "error_count": 55}
    assert len(done["errors"]) == 50 and set(done["errors"][0]) == {"filename", "message"}
    assert done["errors"][0]["filename"].startswith("junk/") and done["message"] is None
    assert "cancel_url" not in done and not stored_keys(import_prefix(started["id"]))
    assert _images(dataset.id) == 5


def _job_exists(job_id: str) -> bool:
    try:
        Job.fetch(job_id, connection=get_redis())
    except NoSuchJobError:
        return False
    return True


def test_cancelling_a_waiting_import_stops_it_before_it_starts(app, logged_in, dataset):
    response = upload(logged_in, dataset.id, [("a.zip", make_zip({f"c/{i}.png": png(i) for i in range(4)}))])
    imp = db.session.get(Import, response.json["import"]["id"])
    job_id = imp.job_id
    assert _job_exists(job_id)
    cancelled = logged_in.post(response.json["import"]["cancel_url"], headers={"Accept": "application/json"}).json
    assert cancelled["status"] == "cancelled"
    assert cancelled["message"] == ("Cancelled after 0 of 4 files. The 0 images added before were kept; "
                                    "the other 4 files were not imported.")
    assert not _job_exists(job_id) and not stored_keys(import_prefix(imp.id))
    run_jobs(app)
    assert _images(dataset.id) == 0


def test_many_loose_files_in_one_request_become_a_background_import(app, logged_in, dataset):
    app.config["SYNC_UPLOAD_MAX_FILES"] = 3
    response = upload(logged_in, dataset.id, [(f"photo {i}.png", png(i)) for i in range(5)] + [("x.txt", b"no")])
    assert response.status_code == 202 and response.json["import"]["kind"] == "files"
    run_jobs(app)
    status = logged_in.get(response.json["import"]["status_url"]).json
    assert (status["status"], status["added"], status["error_count"]) == ("finished", 5, 1)
    imp_url = f"/datasets/{dataset.id}/imports/{response.json['import']['id']}"
    assert "6 uploaded files" in logged_in.get(imp_url).data.decode()
    assert "6 arquivos enviados" in logged_in.get(imp_url, headers={"Accept-Language": "pt-BR"}).data.decode()
    assert sorted(db.session.scalars(select(Image.filename)))[:2] == ["photo 0.png", "photo 1.png"]
    small = upload(logged_in, dataset.id, [("a.png", png(50)), ("b.png", png(51))])
    assert small.status_code == 200 and [r["status"] for r in small.json["results"]] == ["added", "added"]


def test_dataset_page_polls_a_running_import_and_stops_when_it_ended(app, logged_in, dataset):
    imp = Import(dataset_id=dataset.id, user_id=logged_in.user.id, kind="zip", source_name="big.zip",
                 status="running", total=200, processed=50, added=48, duplicates=2, errors=[],
                 started_at=utcnow(), heartbeat_at=utcnow())
    db.session.add(imp)
    db.session.commit()
    page = logged_in.get(f"/datasets/{dataset.id}").data.decode()
    assert f'id="import-{imp.id}"' in page and 'hx-trigger="every 1s"' in page
    assert 'aria-valuenow="25"' in page and "50 of 200 files" in page and "Cancel import" in page
    partial = logged_in.get(f"/datasets/{dataset.id}/imports/{imp.id}", headers={"HX-Request": "true"}).data.decode()
    assert partial.lstrip().startswith("<div") and "<html" not in partial
    full = logged_in.get(f"/datasets/{dataset.id}/imports/{imp.id}").data.decode()
    assert "<html" in full and f'id="import-{imp.id}"' in full and "Back to the dataset" in full
    cancel = logged_in.post(f"/datasets/{dataset.id}/imports/{imp.id}/cancel", headers={"HX-Request": "true"})
    assert cancel.status_code == 200 and "Stopping" in cancel.data.decode()
    imp = db.session.get(Import, imp.id)
    assert imp.cancel_requested and imp.status == "running"  # the job stops at its next commit
    imp.status, imp.message = "cancelled", "Cancelled after 50 of 200 files."
    db.session.commit()
    ended = logged_in.get(f"/datasets/{dataset.id}/imports/{imp.id}", headers={"HX-Request": "true"}).data.decode()
    assert "hx-trigger" not in ended and "Cancelled after 50 of 200 files." in ended


def test_reaper_fails_imports_that_can_never_finish(app, dataset):
    from app.blueprints.datasets.images.imports import reap_stale_imports

    old = utcnow() - timedelta(minutes=10)
    dead = Import(dataset_id=dataset.id, kind="zip", source_name="a.zip", status="running", total=10,
                  processed=4, added=4, errors=[], started_at=old, heartbeat_at=old, upload_path="uploads/991")
    lost = Import(dataset_id=dataset.id, kind="zip", source_name="b.zip", status="queued", total=3, errors=[],
                  job_id="import-992-gone", created_at=old)
    alive = Import(dataset_id=dataset.id, kind="folder", source_name="/data", status="running", total=10,
                   errors=[], started_at=utcnow(), heartbeat_at=utcnow())
    db.session.add_all([dead, lost, alive])
    db.session.commit()
    get_storage().write("uploads/991/upload.zip", b"PK")
    incoming = get_storage().incoming_dir
    incoming.mkdir(parents=True)
    (incoming / "fresh.zip").write_bytes(b"PK")  # a request still storing its upload
    (incoming / "left.zip").write_bytes(b"PK")  # one whose web process died a day ago
    os.utime(incoming / "left.zip", (time.time() - 2 * 86400,) * 2)
    assert reap_stale_imports(60) == 2
    assert sorted(p.name for p in incoming.iterdir()) == ["fresh.zip"]
    assert (dead.status, lost.status, alive.status) == ("failed", "failed", "running")
    assert "stopped unexpectedly" in dead.message and "The 4 images added before were kept" in dead.message
    assert "the other 6 files were not imported" in dead.message and not stored_keys("uploads/991")
    assert "disappeared from the queue" in lost.message


def test_import_folder_command_imports_a_server_folder_like_a_zip(app, dataset, tmp_path):
    root = tmp_path / "photos"
    for rel, data in {"cats/a.png": png(1), "cats/deep/b.png": png(2), "dogs/c.png": png(3), "d.png": png(4),
                      ".hidden/e.png": png(5), "dogs/notes.txt": b"no"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import-folder", str(dataset.id), str(root)])
    assert result.exit_code == 0, result.output
    assert "5 of 5 files: 4 added, 0 duplicates, 1 could not be used" in result.output
    assert "Done: 4 images added." in result.output
    labels = dict(db.session.execute(select(Image.filename, Label.name).outerjoin(Label, Label.id == Image.label_id)).all())
    assert labels == {"a.png": "cats", "b.png": "cats", "c.png": "dogs", "d.png": None}
    imp = db.session.scalar(select(Import))
    assert (imp.kind, imp.status, imp.source_name) == ("folder", "finished", str(root))
    assert (root / "cats" / "a.png").exists()  # the server's folder is only read
    again = runner.invoke(args=["import-folder", str(dataset.id), str(root)])
    assert "0 added, 4 duplicates" in again.output
    missing = runner.invoke(args=["import-folder", "999", str(root)])
    assert missing.exit_code != 0 and "no dataset 999" in missing.output


# --- with a real worker process --------------------------------------------------------------------

def _many_images_zip(count: int) -> bytes:
    return make_zip({f"class{i % 3}/img{i}.png": png(i, size=(20, 20)) for i in range(count)})


@pytest.fixture
def worker(app, tmp_path):
    """`python worker.py` on this test's queue, committing an import every 10 images."""
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env=child_env(app, IMPORT_BATCH_SIZE=10, WORKER_CLASS="fork"))
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.mark.slow
def test_progress_and_cancel_with_a_real_worker(app, logged_in, dataset, worker):
    response = upload(logged_in, dataset.id, [("many.zip", _many_images_zip(1500))])
    status_url, cancel_url = response.json["import"]["status_url"], response.json["import"]["cancel_url"]
    first = wait_until(lambda: (s := logged_in.get(status_url).json)["processed"] > 0 and s, timeout=90, interval=0.05)
    assert first["status"] == "running" and first["total"] == 1500
    logged_in.post(cancel_url)
    final = wait_until(lambda: (s := logged_in.get(status_url).json)["status"] not in ("queued", "running") and s,
                       timeout=60)
    assert final["status"] == "cancelled"
    assert 0 < final["added"] < 1500 and final["added"] == _images(dataset.id)
    assert f"the other {1500 - final['processed']:,} files were not imported" in final["message"]
    assert not stored_keys(import_prefix(final["id"]))


@pytest.mark.slow
def test_pages_answer_while_a_long_import_runs(app, logged_in, dataset, worker):
    response = upload(logged_in, dataset.id, [("many.zip", _many_images_zip(1500))])
    status_url = response.json["import"]["status_url"]
    reads_during = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = logged_in.get(status_url).json
        if status["status"] not in ("queued", "running"):
            break
        for url in (f"/datasets/{dataset.id}", f"/datasets/{dataset.id}/label", "/datasets"):
            page = logged_in.get(url)
            assert page.status_code == 200, (url, page.status_code)
        if status["status"] == "running" and 0 < status["processed"] < status["total"]:
            reads_during += 1
    assert status["status"] == "finished" and status["added"] == 1500
    assert reads_during >= 2  # the pages were read while rows were being committed


def test_a_plain_form_post_of_a_zip_shows_the_import_on_the_dataset_page(app, logged_in, dataset):
    page = upload(logged_in, dataset.id, [("pets.zip", make_zip({"cats/a.png": png(1)}))], json=False,
                  follow_redirects=True).data.decode()
    assert "Import started; it continues in the background." in page
    assert "pets.zip" in page and 'data-import-status="queued"' in page
    run_jobs(app)
    page = logged_in.get(f"/datasets/{dataset.id}").data.decode()
    assert 'data-import-status="finished"' in page and "1 image added" in page
