"""Shared fixtures: a real app on a fresh database, real Redis, a CSRF-aware client, factories.

TEST_DATABASE_URL (e.g. PostgreSQL) and TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15) switch the
suite from the embedded defaults (SQLite file, embedded Redis) to real servers. TEST_STORAGE_URL=moto
keeps the `app` fixture's files in an S3 bucket (a fresh prefix per test) of a moto server the session
starts, instead of a local folder.
"""
from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import uuid

import pytest
import redis as redis_lib
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from PIL import Image as PILImage

os.environ.setdefault("TORCH_NUM_THREADS", "2")


REFREEZE_EVERY = 100  # tests


@pytest.fixture(autouse=True)
def settled_heap(request):
    """Keep the garbage collector's full passes small, as the web process does (app.serving.settle_heap).
    torch, onnxruntime and the app leave ~500,000 long-lived objects once imported, and the session's
    fixtures keep adding more (trained models, caches): every full collection walked all of them, ~1 s each
    late in the suite. Every REFREEZE_EVERY tests, one collection and then gc.freeze() move the survivors
    out of its walks (frozen objects are still freed when nothing refers to them)."""
    import gc

    session = request.session
    count = getattr(session, "tests_since_freeze", REFREEZE_EVERY)
    if count >= REFREEZE_EVERY:
        gc.collect()
        gc.freeze()
        count = 0
    session.tests_since_freeze = count + 1
    yield


@pytest.fixture(scope="session", autouse=True)
def compiled_translations():
    """The .mo catalogs compiled from the committed .po files (as `make test` does), so pytest alone works."""
    from app.i18n import compile_catalogs

    compile_catalogs()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    from app.redis_server import ensure_embedded_redis, stop_embedded_redis

    folder = tmp_path_factory.mktemp("redis")
    url = ensure_embedded_redis(str(folder))
    yield url
    stop_embedded_redis(str(folder))


class CsrfClient(FlaskClient):
    """A test client that sends a valid CSRF token with unsafe requests unless told `csrf=False`."""

    def open(self, *args, csrf: bool = True, **kwargs):
        method = (kwargs.get("method") or "GET").upper()
        if csrf and method in {"POST", "PUT", "PATCH", "DELETE"}:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", self.csrf_token())
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        with self.session_transaction() as sess:
            raw = sess.setdefault("csrf_token", uuid.uuid4().hex)
        secret = self.application.config["SECRET_KEY"]
        return URLSafeTimedSerializer(secret, salt="wtf-csrf-token").dumps(raw)


@pytest.fixture(scope="session")
def server_database_url():
    """TEST_DATABASE_URL (PostgreSQL) made private to this test session: a fresh database named after
    it is created for the session and dropped at the end, so two suites running at once (two
    worktrees, a developer and CI) never drop each other's tables. None: SQLite files per test."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        yield url
        return
    import sqlalchemy as sa

    base = sa.make_url(url)
    name = f"{base.database}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


S3_TEST_BUCKET = "studio-tests"
S3_TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API for the session: moto's standalone server on a free port, one bucket made."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per S3 request in every failure report
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, **S3_TEST_CREDENTIALS).create_bucket(Bucket=S3_TEST_BUCKET)
    yield endpoint
    server.stop()


def s3_settings(endpoint: str, bucket: str = S3_TEST_BUCKET, prefix: str | None = None) -> dict:
    """App settings that keep files in `bucket` (under a fresh prefix unless given) at `endpoint`."""
    return {"STORAGE_URL": f"s3://{bucket}/{prefix or uuid.uuid4().hex[:12]}", "S3_ENDPOINT_URL": endpoint,
            "S3_ACCESS_KEY_ID": S3_TEST_CREDENTIALS["aws_access_key_id"],
            "S3_SECRET_ACCESS_KEY": S3_TEST_CREDENTIALS["aws_secret_access_key"],
            "S3_REGION": S3_TEST_CREDENTIALS["region_name"]}


@pytest.fixture
def storage_config(request) -> dict:
    """The `app` fixture's storage: a local folder, or with TEST_STORAGE_URL=moto a bucket prefix."""
    if os.environ.get("TEST_STORAGE_URL", "") == "":
        return {}
    if os.environ["TEST_STORAGE_URL"] != "moto":
        raise pytest.UsageError("TEST_STORAGE_URL understands only 'moto'")
    return s3_settings(request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def app_config() -> dict:
    """Extra settings for the `app` fixture; a test module overrides this fixture to change them (e.g.
    RATELIMIT_ENABLED, which is off by default in tests)."""
    return {}


@pytest.fixture
def app(tmp_path, redis_url, server_database_url, storage_config, app_config):
    from app import create_app
    from app.extensions import db

    database_url = server_database_url or f"sqlite:///{tmp_path / 'test.sqlite3'}"
    app = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "STORAGE_DIR": str(tmp_path / "storage"),
        "WEIGHTS_DIR": str(tmp_path / "weights"),
        "RQ_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
        "LOGIN_LOCK_SECONDS": 60,
        "RATELIMIT_ENABLED": False,  # tests/test_rate_limits.py and friends switch them on
        "DATASET_UNDO_SECONDS": 0,  # a deleted dataset is removed by the next job run, a deleted model at once
                                    # (tests of the undo set it)
        "PREDICT_FREEZE_HEAP": False,  # a full collection of pytest's heap per model load: 0.45 s each
        **storage_config,
        **app_config,
    })
    app.test_client_class = CsrfClient

    @app.before_request
    def forget_cached_user():
        # The fixture keeps one app context open, so flask.g would carry flask-login's cached user
        # from one client's request into another client's.
        from flask import g

        g.pop("_login_user", None)

    with app.app_context():
        db.drop_all()
        db.create_all()
        redis_lib.Redis.from_url(redis_url).flushdb()
        yield app
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
        if "studio_redis" in app.extensions:  # closed now, not by whichever later collection frees the app
            app.extensions["studio_redis"].close()
    from app.ml.networks import set_weights_shelf

    set_weights_shelf(None)  # a bucket's weights shelf must not outlive its app (and its moto server)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    from app.blueprints.auth.services import register_user

    def factory(username: str = "alice", password: str = "correct horse", is_admin: bool = False):
        return register_user(username, password, is_admin=is_admin)

    return factory


def login(client, username: str = "alice", password: str = "correct horse"):
    return client.post("/login", data={"username": username, "password": password})


@pytest.fixture
def logged_in(client, make_user):
    """A client logged in as a fresh user 'alice'."""
    user = make_user("alice")
    response = login(client)
    assert response.status_code == 302, response.data
    client.user = user
    return client


class CountedReads(io.BytesIO):
    """An in-memory stream that counts the reads made of it (read and readinto alike)."""

    reads = 0

    def readinto(self, buffer):
        self.reads += 1
        return super().readinto(buffer)

    def read(self, size=-1):
        self.reads += 1
        return super().read(size)


def image_bytes(color=(200, 30, 30), size=(32, 32), fmt="PNG", noise: int = 0) -> bytes:
    """A small generated image; `noise` varies the pixels so images get distinct hashes."""
    img = PILImage.new("RGB", size, color)
    if noise:
        img.putpixel((noise % size[0], (noise // size[0]) % size[1]), (noise % 256, 0, 0))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def flashes(html: bytes | str) -> list[str]:
    text = html.decode() if isinstance(html, bytes) else html
    return re.findall(r'class="flash flash-\w+"[^>]*>([^<]*)<', text)


def store_run_files(run, folder) -> None:
    """Store the files of `folder` as the model files of `run` (in whichever storage the app uses)."""
    from app.filestore import run_prefix
    from app.storage import get_storage

    storage = get_storage()
    storage.put_dir(run_prefix(run.id), folder)
    run.artifact_dir = storage.ref(run_prefix(run.id))


def stored_keys(prefix: str) -> list[str]:
    """Every key the app's storage holds under prefix/."""
    from app.storage import get_storage

    return [key for key, _ in get_storage().list(prefix)]


def stored_files() -> list[str]:
    """Every file the app keeps: the objects of its storage and, with a bucket, the files on this
    machine beside the cache (uploads being received, work folders)."""
    from app.filestore.migrate import STORED_FOLDERS
    from app.storage import get_storage

    storage = get_storage()
    found = [key for folder in STORED_FOLDERS for key, _ in storage.list(folder)]
    root = storage.local_root
    if storage.remote and root.exists():
        found += [p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).parts[0] != "cache"]
    return found


STORAGE_SETTINGS = ("STORAGE_URL", "S3_ENDPOINT_URL", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")



def stop_processes(procs, timeout: float = 20) -> None:
    """Terminate server/worker processes a test started, killing any that outlive `timeout`."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

def child_env(app, **extra) -> dict:
    """Environment for a child web/worker process sharing this test's database, Redis and queue."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "RQ_QUEUE": app.config["RQ_QUEUE"],
        "STORAGE_DIR": app.config["STORAGE_DIR"],
        "WEIGHTS_DIR": app.config["WEIGHTS_DIR"],
        "INSTANCE_PATH": app.instance_path,
        "SECRET_KEY": app.config["SECRET_KEY"],
    })
    env.update({name: app.config[name] for name in STORAGE_SETTINGS if app.config.get(name)})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_jobs(app) -> None:
    """Run every queued job in this process (a real RQ worker in burst mode, real Redis)."""
    from rq import SimpleWorker

    from app.extensions import get_queue, get_redis

    with app.app_context():
        SimpleWorker([get_queue()], connection=get_redis()).work(burst=True)
