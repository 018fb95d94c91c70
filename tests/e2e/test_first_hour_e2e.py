"""The first hour of a new user (issue #16): every rough edge a walk-through found, checked in Chromium
against gunicorn + a real worker. One account with one trained model is shared (tests/e2e/conftest.py)."""
from __future__ import annotations

import json
import subprocess

from tests.e2e.conftest import colour_png


def test_the_api_page_example_works_when_pasted(trained_studio, browser, tmp_path, shoot):
    page = trained_studio.page(browser)
    page.goto(trained_studio.base + "/tokens")
    page.fill("#token-name", "my script")
    page.click("button:has-text('Create token')")
    example = page.locator("#tokens [data-curl-example]")
    example.wait_for()
    shoot(page, "api_token_1280")
    command = example.inner_text()
    assert f"-F model={trained_studio.run_id}" in command
    (tmp_path / "photo.jpg").write_bytes(colour_png((210, 40, 40), 99))
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    answer = json.loads(done.stdout)
    assert answer["predictions"][0]["category"] == "red", answer
    # the only ready model of this account: the call works without naming it, too
    without = command.replace(f"-F model={trained_studio.run_id} ", "")
    answer = json.loads(subprocess.run(["bash", "-c", without], cwd=tmp_path, capture_output=True, text=True,
                                       timeout=60).stdout)
    assert answer["model"]["id"] == trained_studio.run_id, answer
    page.context.close()
