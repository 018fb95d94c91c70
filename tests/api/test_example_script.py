"""examples/nightly_retrain.py against a live studio (gunicorn + a real worker on loopback): two nights.
The first promotes its model (there was none); the second retrains with the same settings and keeps the
default when the new model is not better by --min-gain."""
from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.api.conftest import png
from tests.api.live import ROOT, live_studio, seed

pytestmark = pytest.mark.slow
COLORS = {"red": (220, 30, 30), "blue": (30, 30, 220)}


def day_folder(root, day: int):
    for name, color in COLORS.items():
        (root / name).mkdir(parents=True)
        for i in range(8):
            (root / name / f"{day}-{i}.png").write_bytes(png(100 * day + i + 50 * (name == "blue"), color))
    return root


def nightly(url, token, dataset, folder, *extra):
    args = [sys.executable, str(ROOT / "examples" / "nightly_retrain.py"), "--url", url, "--dataset", str(dataset),
            "--images", str(folder), "--poll", "0.5", "--timeout", "240", *extra]
    done = subprocess.run(args, env={"STUDIO_TOKEN": token, "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_nightly_retrain_and_promote(tmp_path):
    instance = tmp_path / "instance"
    with live_studio(instance, worker=True) as url:
        token = seed(instance, "night")["token"]
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"
        dataset = api.post(f"{url}/api/v1/datasets", json={"name": "Camera"}, timeout=30).json()["id"]

        first = nightly(url, token, dataset, day_folder(tmp_path / "day1", 1), "--architecture", "small_cnn",
                        "--mode", "scratch", "--options", '{"image_size": 32, "epochs": 3, "batch_size": 8}')
        assert "added 16 images" in first and "promoted model" in first, first
        me = api.get(f"{url}/api/v1/me", timeout=30).json()
        runs = api.get(f"{url}/api/v1/runs", timeout=30).json()["runs"]
        assert me["default_model_id"] == runs[0]["id"] and runs[0]["status"] == "succeeded"

        second = nightly(url, token, dataset, day_folder(tmp_path / "day2", 2), "--min-gain", "2")
        assert "added 16 images" in second and f"kept model {me['default_model_id']}" in second, second
        runs = api.get(f"{url}/api/v1/runs", timeout=30).json()["runs"]
        assert len(runs) == 2 and runs[0]["options"] == runs[1]["options"]  # the same settings, retrained
        assert api.get(f"{url}/api/v1/me", timeout=30).json()["default_model_id"] == me["default_model_id"]
        answer = requests.post(f"{url}/predict", headers={"Authorization": f"Bearer {token}"}, timeout=60,
                               files=[("file", ("x.png", png(999, COLORS["blue"])))]).json()
        assert answer["model"]["id"] == me["default_model_id"] and len(answer["predictions"]) == 1
