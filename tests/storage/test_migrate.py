"""`flask storage migrate --to s3://...`: a local store copied into a bucket, resumable, verified by hash."""
from __future__ import annotations

import hashlib

import pytest

from app.filestore import LocalStore, image_key, make_store, run_key, thumb_key
from app.storage import init_storage
from tests.conftest import image_bytes, s3_settings


@pytest.fixture
def app_config() -> dict:
    return {"STORAGE_URL": ""}  # these apps start on a local folder, whatever the suite's storage


def _fill(store: LocalStore) -> dict[str, bytes]:
    files = {}
    for i in range(3):
        data = image_bytes(noise=i + 1)
        sha = hashlib.sha256(data).hexdigest()
        files[image_key(sha)], files[thumb_key(sha)] = data, b"thumb %d" % i
    files[run_key(7, "model.onnx")] = b"onnx bytes" * 1000
    files["health/3.json"] = b'{"status": "finished"}'
    for key, data in files.items():
        store.write(key, data)
    store.write("uploads/incoming/half-received.zip", b"PK")  # being received: not part of the store yet
    store.feature_dir(3).mkdir(parents=True)
    (store.feature_dir(3) / "seg-1.npy").write_bytes(b"cache")  # a cache: rebuilt, never copied
    return files


def _migrate(app, url: str):
    return app.test_cli_runner().invoke(args=["storage", "migrate", "--to", url, "--threads", "2"])


def test_migrate_copies_verifies_and_resumes(app, s3_endpoint):
    files = _fill(LocalStore(app.config["STORAGE_DIR"]))
    settings = s3_settings(s3_endpoint)
    app.config.update({k: v for k, v in settings.items() if k != "STORAGE_URL"})
    first = _migrate(app, settings["STORAGE_URL"])
    assert first.exit_code == 0, first.output
    assert "8 of 8 files" in first.output and "8 copied, 0 already there" in first.output
    assert f"Set STORAGE_URL={settings['STORAGE_URL']}" in first.output
    app.config["STORAGE_URL"] = settings["STORAGE_URL"]
    init_storage(app)
    bucket = app.extensions["storage"]
    assert sorted(key for folder in ("images", "thumbs", "models", "health", "uploads")
                  for key, _ in bucket.list(folder)) == sorted(files)
    assert all(bucket.read(key) == data for key, data in files.items())
    head = bucket.client().head_object(Bucket=bucket.bucket, Key=bucket.name(run_key(7, "model.onnx")))
    assert head["Metadata"]["sha256"] == hashlib.sha256(files[run_key(7, "model.onnx")]).hexdigest()

    bucket.write(run_key(7, "model.onnx"), b"a different, broken copy")  # e.g. a copy cut short
    again = _migrate(app, settings["STORAGE_URL"])
    assert again.exit_code == 0 and "1 copied, 7 already there" in again.output, again.output
    assert bucket.read(run_key(7, "model.onnx")) == files[run_key(7, "model.onnx")]


def test_migrate_refuses_damaged_images_and_unusable_buckets(app, s3_endpoint):
    store = LocalStore(app.config["STORAGE_DIR"])
    files = _fill(store)
    damaged = next(key for key in files if key.startswith("images/"))
    store.write(damaged, b"no longer the bytes its name hashes")
    settings = s3_settings(s3_endpoint)
    app.config.update({k: v for k, v in settings.items() if k != "STORAGE_URL"})
    result = _migrate(app, settings["STORAGE_URL"])
    assert result.exit_code == 1 and "7 copied" in result.output
    assert f"1 image file(s) no longer match their hash and were not copied: {damaged}" in result.output
    target = make_store(settings["STORAGE_URL"], app.config["STORAGE_DIR"], s3_options={
        "endpoint_url": s3_endpoint, "access_key": "testing", "secret_key": "testing", "region": "us-east-1"})
    assert not target.exists(damaged)
    missing = _migrate(app, "s3://no-such-bucket/x")
    assert missing.exit_code == 1 and "does not exist" in missing.output and "Traceback" not in missing.output
    elsewhere = _migrate(app, "/srv/elsewhere")
    assert elsewhere.exit_code == 1 and "s3://bucket/prefix" in elsewhere.output
