"""SQLite as the default database: connection settings, and the site and training going on while another
writer holds a long transaction (a big import), on a real SQLite file with a real second connection."""
from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import select, text

from tests.conftest import CsrfClient, image_bytes, login, run_jobs

HX = {"HX-Request": "true"}


@pytest.fixture
def sqlite_app(tmp_path, redis_url, request):
    """The app on a SQLite file whatever TEST_DATABASE_URL says; an indirect parameter sets its busy timeout."""
    import redis as redis_lib

    from app import create_app
    from app.extensions import db

    app = create_app({
        "TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'studio.sqlite3'}", "REDIS_URL": redis_url,
        "STORAGE_DIR": str(tmp_path / "storage"), "RQ_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
        "SQLITE_BUSY_TIMEOUT": getattr(request, "param", 30.0),
    })
    app.test_client_class = CsrfClient
    app.database_path = tmp_path / "studio.sqlite3"
    with app.app_context():
        db.create_all()
        redis_lib.Redis.from_url(redis_url).flushdb()
        yield app
        db.session.remove()
        db.engine.dispose()


@contextmanager
def long_write(path, seconds: float):
    """Another connection holds a write transaction on the file for `seconds`, as a big import does once
    its changes outgrow the page cache (EXCLUSIVE: without WAL, readers would have to wait too).
    Yields an Event that is set while the lock is held."""
    holding, done = threading.Event(), threading.Event()

    def writer():
        con = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        try:
            con.execute("BEGIN EXCLUSIVE")
            con.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (f"import-{uuid.uuid4().hex}", "1"))
            holding.set()
            time.sleep(seconds)
            con.execute("COMMIT")
        finally:
            holding.clear()
            con.close()
            done.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert holding.wait(10), "the writer never got the lock"
    try:
        yield holding
    finally:
        done.wait(30)
        thread.join(5)


def test_every_connection_gets_the_sqlite_settings(sqlite_app):
    from app.extensions import db

    with db.engine.connect() as conn:
        values = [conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")]
    assert values == ["wal", 30000, 1, 1]  # synchronous 1 = NORMAL


def test_foreign_keys_are_enforced_and_cascade(sqlite_app):
    from app.blueprints.training.samples import FrozenSamples, store
    from app.extensions import db
    from app.models import Dataset, Image, Label, RunSample, TrainingRun, User

    user = User(username="alice", password_hash="x")
    db.session.add(user)
    db.session.flush()
    dataset = Dataset(owner_id=user.id, name="d")
    db.session.add(dataset)
    db.session.flush()
    label = Label(dataset_id=dataset.id, name="ants")
    db.session.add(label)
    db.session.flush()
    image = Image(dataset_id=dataset.id, sha256="a" * 64, label_id=label.id)
    run = TrainingRun(dataset_id=dataset.id, name="r", architecture="small_cnn", mode="scratch")
    db.session.add_all([image, run])
    db.session.commit()
    store(run.id, FrozenSamples(["ants"], [(image.id, 0, image.sha256)], {"train": [0], "val": [], "test": []}))
    db.session.execute(text("DELETE FROM labels WHERE id = :id"), {"id": label.id})
    db.session.execute(text("DELETE FROM training_runs WHERE id = :id"), {"id": run.id})
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Image, image.id).label_id is None  # ON DELETE SET NULL
    assert db.session.scalars(select(RunSample)).all() == []  # ON DELETE CASCADE
    with pytest.raises(Exception, match="FOREIGN KEY"):
        db.session.execute(text("INSERT INTO images (dataset_id, sha256, filename, filename_key, width, height, "
                                "size_bytes, format, created_at) VALUES (999, 'b', '', '', 0, 0, 0, '', '2026-01-01')"))
        db.session.commit()
    db.session.rollback()


def _running_run(app):
    from app.blueprints.auth.services import register_user
    from app.blueprints.training import lifecycle
    from app.blueprints.training.samples import FrozenSamples, store
    from app.blueprints.datasets.services import create_dataset
    from app.extensions import db
    from app.models import TrainingRun

    user = register_user("alice", "correct horse")
    dataset = create_dataset(user.id, "Ants")
    run = TrainingRun(dataset_id=dataset.id, created_by_id=user.id, name="r", architecture="small_cnn",
                      mode="scratch", status="queued", job_id="train-x")
    db.session.add(run)
    db.session.commit()
    store(run.id, FrozenSamples(["a", "b"], [(1, 0, "a" * 64), (2, 1, "b" * 64)], {"train": [0, 1]}))
    return user, dataset, lifecycle.claim(run.id, "test-worker")


def test_pages_and_training_progress_go_on_while_an_import_holds_the_database(sqlite_app):
    from app.blueprints.training import lifecycle
    from app.extensions import db
    from app.models import TrainingRun

    user, dataset, run = _running_run(sqlite_app)
    client = sqlite_app.test_client()
    assert login(client).status_code == 302
    reporter = lifecycle.RunReporter(run)
    reporter({"phase": "training", "epoch": 1, "epochs": 2, "fraction": 0.5, "message": "Epoch 1/2"})
    client.get(f"/models/{run.id}/progress", headers=HX)  # warm: its first call in a process loads modules (~2 s)
    with long_write(sqlite_app.database_path, 2.0) as holding:
        pages = [client.get("/datasets"), client.get("/healthz"), client.get(f"/models/{run.id}/progress", headers=HX)]
        answered_while_held = holding.is_set()  # WAL: readers do not wait for the writer
        reporter({"phase": "training", "epoch": 2, "epochs": 2, "fraction": 0.9, "message": "Epoch 2/2"})
        assert reporter.flush() is True  # waited for the lock (busy_timeout), then wrote
    assert [p.status_code for p in pages] == [200, 200, 200] and answered_while_held
    db.session.expire_all()
    stored = db.session.get(TrainingRun, run.id)
    assert stored.progress["fraction"] == 0.9 and len(stored.history) == 2 and stored.status == "running"


@pytest.mark.parametrize("sqlite_app", [0.2], indirect=True)
def test_progress_write_outlasts_the_busy_timeout_and_never_kills_training(sqlite_app):
    from app.blueprints.training import lifecycle
    from app.extensions import db
    from app.models import TrainingRun

    _, _, run = _running_run(sqlite_app)
    reporter = lifecycle.RunReporter(run)
    reporter.latest = {"phase": "training", "fraction": 0.3}
    reporter.pending_log = ["Epoch 1/3: validation accuracy 50%"]
    with long_write(sqlite_app.database_path, 1.5):
        assert reporter.flush(budget_s=0.3) is False  # gave up for now, without raising
        assert reporter.pending_log  # kept for the next write
        assert reporter.flush() is True  # retried with backoff past the 0.2 s busy timeout
    db.session.expire_all()
    stored = db.session.get(TrainingRun, run.id)
    assert stored.progress["fraction"] == 0.3 and stored.log[-1]["message"].startswith("Epoch 1/3")


def _colours_dataset(user_id: int) -> int:
    """Two classes of six small generated images, files in storage (a training job reads them)."""
    from app.extensions import db
    from app.filestore import image_key
    from app.models import Dataset, Image, Label
    from app.storage import get_storage

    dataset = Dataset(owner_id=user_id, name="Colours")
    db.session.add(dataset)
    db.session.flush()
    for position, (name, color) in enumerate((("red", (220, 30, 30)), ("blue", (30, 30, 220)))):
        label = Label(dataset_id=dataset.id, name=name, position=position)
        db.session.add(label)
        db.session.flush()
        for i in range(6):
            data = image_bytes(color, noise=i + 1 + 1000 * position)
            sha = hashlib.sha256(data).hexdigest()
            get_storage().write(image_key(sha), data)
            db.session.add(Image(dataset_id=dataset.id, sha256=sha, label_id=label.id, filename=f"{name}{i}.png"))
    db.session.commit()
    return dataset.id


@pytest.mark.parametrize("sqlite_app", [0.2], indirect=True)
def test_a_training_job_succeeds_while_another_writer_keeps_locking_the_database(sqlite_app):
    """The issue's failure: a quick training run during a big import died with "database is locked"."""
    from app.blueprints.auth.services import register_user
    from app.extensions import db
    from app.models import TrainingRun
    from tests.training.conftest import TINY

    dataset_id = _colours_dataset(register_user("alice", "correct horse").id)
    client = sqlite_app.test_client()
    login(client)
    assert client.post(f"/datasets/{dataset_id}/train", data=TINY).status_code == 302
    stop = threading.Event()

    def importer():  # long write transactions with short gaps, as a big import does
        while not stop.is_set():
            with long_write(sqlite_app.database_path, 0.7):
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=importer, daemon=True)
    thread.start()
    try:
        run_jobs(sqlite_app)
    finally:
        stop.set()
        thread.join(10)
    db.session.expire_all()
    run = db.session.scalars(select(TrainingRun)).one()
    assert run.status == "succeeded", (run.error, run.log)
    assert run.threshold_curve is not None and run.progress["phase"] == "done"


@pytest.mark.parametrize("sqlite_app", [0.2], indirect=True)
def test_labels_from_a_csv_wait_out_another_writer_in_the_job_but_not_in_a_request(sqlite_app):
    from sqlalchemy.exc import OperationalError

    from app.blueprints.datasets.images.csv_labels import _write
    from app.extensions import db
    from app.models import Image, Label, User

    user = User(username="ann")
    user.set_password("correct horse battery")
    db.session.add(user)
    db.session.commit()
    dataset_id = _colours_dataset(user.id)
    label_id = db.session.scalar(select(Label.id).where(Label.dataset_id == dataset_id).limit(1))
    ids = list(db.session.scalars(select(Image.id).where(Image.dataset_id == dataset_id)))
    with long_write(sqlite_app.database_path, 1.0):
        with pytest.raises(OperationalError):  # a request does not wait out a long writer
            _write(dataset_id, user.id, {label_id: ids}, None)
    db.session.rollback()
    with long_write(sqlite_app.database_path, 1.0):
        assert _write(dataset_id, user.id, {label_id: ids}, None, retry_s=20) == len(ids)  # the job does
    db.session.expire_all()
    assert {db.session.get(Image, i).label_id for i in ids} == {label_id}
