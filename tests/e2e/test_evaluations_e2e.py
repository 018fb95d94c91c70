"""Evaluate on a dataset, as a person does it: from the model's page to the finished result (Chromium against
gunicorn + a real worker; the shared Quick model of `trained_studio`)."""
from __future__ import annotations

import re


def test_evaluate_a_model_from_its_page(trained_studio, browser):
    page = trained_studio.page(browser)
    page.goto(f"{trained_studio.base}/models/{trained_studio.run_id}")
    page.select_option("#evaluate-form select[name=dataset_id]", str(trained_studio.dataset_id))
    page.click("#evaluate-form button[type=submit]")
    page.wait_for_url(re.compile(r"/evaluations/\d+$"), timeout=30_000)
    # its own dataset: only the images the model never learned from are tested (the test images here)
    page.wait_for_selector("#evaluation-live[data-evaluation-status=succeeded]", timeout=120_000)
    assert page.is_visible("#evaluation-headline .big-number") and page.is_visible("table.confusion")
    text = page.inner_text("#evaluation-live")
    assert "3 images have no class" in text and "were used to train this model" in text
    page.click("text=Back to the model")
    page.wait_for_url(re.compile(r"/models/\d+(#evaluate)?$"))
    page.wait_for_selector("table.evaluations .badge-succeeded")  # the click only starts the navigation
    assert page.locator("table.evaluations .badge-succeeded").count() == 1
    page.context.close()
