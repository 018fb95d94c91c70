"""The first hour of a new user (issue #16): every rough edge a walk-through found, checked in Chromium
against gunicorn + a real worker. One account with one trained model is shared (tests/e2e/conftest.py)."""
from __future__ import annotations

import json
import re
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


def test_the_train_form_is_ready_to_start_with_a_prefilled_name(trained_studio, browser, shoot):
    page = trained_studio.page(browser)
    page.goto(f"{trained_studio.base}/datasets/{trained_studio.dataset_id}/train")
    name = page.locator("input[name=name]")
    assert re.fullmatch(r"Colours · Quick · \d{4}-\d\d-\d\d", name.input_value())
    assert page.evaluate("document.getElementById('run-form').checkValidity()")  # Start training submits
    page.check("input[name=mode][value=feature_extraction]")
    assert name.input_value().startswith("Colours · Feature extraction · ")
    name.fill("my own name")
    page.check("input[name=mode][value=quick]")
    assert name.input_value() == "my own name"  # what the user typed stays
    page.context.close()
