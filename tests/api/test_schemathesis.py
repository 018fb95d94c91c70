"""Schemathesis against a live studio: the published document and the server must agree.

gunicorn on loopback (no worker: queued runs just wait), a seeded user with a token, dataset and default
model whose ids are the fuzzer's path parameters; every check, a few examples per operation
(tests/api/schemathesis.toml). Any finding fails the test, with Schemathesis' report as the message."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.api.live import live_studio, seed
from tests.predict.conftest import trained_artifacts  # noqa: F401  (a real tiny model, trained once)

CONFIG = Path(__file__).with_name("schemathesis.toml")
pytestmark = pytest.mark.slow


def test_the_api_agrees_with_its_openapi_document(tmp_path, trained_artifacts):  # noqa: F811
    instance = tmp_path / "instance"
    with live_studio(instance, worker=False) as url:
        ids = seed(instance, "fuzz", trained_artifacts)
        config = tmp_path / "schemathesis.toml"
        pinned = "".join(f"{name} = {value}\n" for name, value in ids.items() if name != "token")
        config.write_text(CONFIG.read_text() + "\n[parameters]\n" + pinned)
        command = [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config), "run",
                   f"{url}/api/openapi.json", "--checks", "all", "--header", f"Authorization: Bearer {ids['token']}",
                   "--request-timeout", "60", "--max-failures", "5", "--seed", "1", "--no-color"]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=420)  # its cache too
        document = requests.get(f"{url}/api/openapi.json", timeout=10).json()
    report = done.stdout[-12000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    operations = sum(len(methods) for methods in document["paths"].values())
    assert f"Tested: {operations}" in report and " passed" in report, report  # every operation was exercised
