"""A bucket that is missing or refuses the credentials stops the web server and the worker at start-up,
with a plain sentence (not a traceback, and not a 500 at the first upload)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from app.storage import StorageError, check_storage, init_storage
from tests.conftest import child_env, s3_settings
from tests.ops.conftest import ROOT, free_port, wait_until


def _start(app, module_args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *module_args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=child_env(app, WORKER_PRELOAD_ML="0"))


def _refused(app) -> list[str]:
    """What `python worker.py` and importing wsgi (as gunicorn does) print before stopping."""
    messages = []
    for args, code in ((["worker.py", "--burst"], 1), (["-c", "import wsgi"], 3)):
        done = _start(app, args)
        assert done.returncode == code, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        messages.append(done.stderr.strip().splitlines()[-1])
    return messages


@pytest.mark.slow
def test_missing_bucket_stops_web_and_worker_at_start(app, s3_endpoint):
    app.config.update(s3_settings(s3_endpoint, bucket="no-such-bucket"))
    for message in _refused(app):
        assert "bucket 'no-such-bucket'" in message and "does not exist" in message, message
    init_storage(app)
    with pytest.raises(StorageError, match="does not exist"):
        check_storage(app)
    app.config["STORAGE_URL"] = "ftp://files.example.org/studio"
    done = _start(app, ["worker.py", "--burst"])
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "worker not started: STORAGE_URL must be empty" in done.stderr


@pytest.fixture(scope="module")
def strict_s3(tmp_path_factory):
    """A moto server that checks credentials (IAM auth on): (endpoint, access key, secret key, bucket)."""
    import boto3

    port = free_port()
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": "6"}  # enough unauthenticated calls to create the users' keys
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _answers(port), timeout=30, interval=0.1)
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup",
                           aws_secret_access_key="setup")
        keys = {name: _user(iam, name, actions) for name, actions in (("studio", ["s3:*"]), (
            "reader", ["s3:Get*", "s3:List*", "s3:HeadBucket"]))}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=keys["studio"][0],
                     aws_secret_access_key=keys["studio"][1]).create_bucket(Bucket="strict-bucket")
        yield endpoint, keys, "strict-bucket"
    finally:
        server.kill()  # a test double with nothing to save: SIGTERM took it seconds
        server.wait(timeout=10)
        log.close()


def _user(iam, name: str, actions: list[str]) -> tuple[str, str]:
    """A user allowed `actions` on every bucket: (access key id, secret)."""
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    return key["AccessKeyId"], key["SecretAccessKey"]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_wrong_credentials_stop_web_and_worker_at_start(app, strict_s3):
    endpoint, keys, bucket = strict_s3
    (key_id, secret), reader = keys["studio"], keys["reader"]
    app.config.update(s3_settings(endpoint, bucket=bucket), S3_ACCESS_KEY_ID=key_id, S3_SECRET_ACCESS_KEY=secret)
    init_storage(app)
    check_storage(app)  # the right key is accepted...
    app.config["S3_SECRET_ACCESS_KEY"] = "not-the-secret"
    for message in _refused(app):  # ...a wrong one is refused, by name
        assert "refused the credentials" in message and "AWS_SECRET_ACCESS_KEY" in message, message
    app.config.update(S3_ACCESS_KEY_ID=reader[0], S3_SECRET_ACCESS_KEY=reader[1])
    init_storage(app)
    with pytest.raises(StorageError, match="may read the bucket 'strict-bucket' .* but not write to it"):
        check_storage(app)  # a read-only key would fail every upload: refused at start too
