"""Every main page passes axe-core (run in Chromium through Playwright, axe-playwright-python's vendored
axe.min.js: works offline, checked: no request leaves the machine) with no serious or critical violation,
and loads without a 404 (favicon included). One walk as a new visitor, the studio's owner (a trained
model) and an admin."""
from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.conftest import new_dataset, run_server_cli
from tests.e2e.test_accounts_e2e import register

BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def axe():
    return Axe()


def problems(axe, page) -> list[str]:
    """The serious and critical axe violations on the page, one readable line per element (at most 5 per rule)."""
    lines = []
    for v in axe.run(page).response["violations"]:
        if v["impact"] not in BLOCKING:
            continue
        for node in v["nodes"][:5]:
            why = "; ".join(check["message"] for check in node.get("any", []) + node.get("all", []))
            lines.append(f"{v['id']} ({v['impact']}) {node['target']}: {why or v['help']} | {node['html'][:120]}")
    return lines


def walk(axe, page, base: str, paths: list[str], shoot=None) -> dict[str, list[str]]:
    """Open each path, wait for htmx to settle, run axe; {path: problems} for the pages that have any,
    and every 404 the pages caused."""
    missing: list[str] = []
    outside: list[str] = []  # axe runs from the vendored script and the app needs no CDN: nothing leaves
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:", "blob:")) else None)
    failures = {}
    for path in paths:
        response = page.goto(base + path)
        assert response.status == 200, (path, response.status)
        page.wait_for_load_state("networkidle")
        found = problems(axe, page)
        if found:
            failures[path] = found
        if shoot:
            shoot(page, "axe_" + re.sub(r"\W+", "_", path).strip("_"))
    if missing:
        failures["404s"] = missing
    if outside:
        failures["requests leaving the machine"] = outside
    return failures


def test_pages_of_a_new_visitor(live_server, browser, axe):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    assert walk(axe, page, live_server, ["/", "/login", "/register"]) == {}
    register(page, live_server, "axe-newcomer")
    assert walk(axe, page, live_server, ["/datasets", "/models", "/tokens", "/account"]) == {}
    page.close()


def test_pages_of_an_owner_with_a_trained_model(trained_studio, browser, axe, shoot):
    page = trained_studio.page(browser)
    d, m = trained_studio.dataset_id, trained_studio.run_id
    paths = [f"/datasets/{d}", f"/datasets/{d}/label", f"/datasets/{d}/label?filter=unlabeled",
             f"/datasets/{d}/classes", f"/datasets/{d}/sharing", f"/datasets/{d}/health",
             f"/datasets/{d}/suggestions", f"/datasets/{d}/train", f"/models/{m}", f"/models/{m}/split",
             f"/models/compare?a={m}&b={m}", f"/models/{m}/try", "/models", "/tokens", "/account", "/datasets/new",
             "/api/docs"]
    assert walk(axe, page, trained_studio.base, paths) == {}
    page.context.close()


def test_pages_with_their_live_parts_open(trained_studio, browser, axe):
    """States a page reaches only after using it: an open confusion cell, the token shown once, the
    train form with every field marked, a run in progress, the toast with Undo, a dataset not ready for
    training."""
    page = trained_studio.page(browser)
    base, d, m = trained_studio.base, trained_studio.dataset_id, trained_studio.run_id
    page.goto(f"{base}/models/{m}")
    page.click("table.confusion td a >> nth=0")
    page.wait_for_selector("#cell-images h3")
    assert problems(axe, page) == []
    page.goto(base + "/tokens")
    page.fill("#token-name", "axe")
    page.click("button:has-text('Create token')")
    page.wait_for_selector("#tokens [data-curl-example]")
    assert problems(axe, page) == []
    page.goto(f"{base}/datasets/{d}/train")
    page.click("details.advanced summary")
    page.fill("input[name=epochs]", "-3")
    page.click("button:has-text('Start training')")
    page.wait_for_selector("#run-form .form-error")
    assert problems(axe, page) == []
    page.goto(f"{base}/datasets/{d}/label?filter=unlabeled")
    page.locator("[data-tile]").first.click()
    with page.expect_response(lambda r: "/images/label" in r.url):
        page.keyboard.press("u")
    page.wait_for_selector("[data-toast]")
    assert problems(axe, page) == []
    page.goto(f"{base}/datasets/{d}/train")  # a run in progress: the live card (then cancelled)
    page.check("input[name=mode][value=fine_tune]")
    page.click("button:has-text('Start training')")
    page.wait_for_url(re.compile(r"/models/\d+$"))
    page.wait_for_selector("#run-progress [role=progressbar]")
    assert problems(axe, page) == []
    page.on("dialog", lambda dialog: dialog.accept())
    cancel = page.locator("#run-progress button:has-text('Cancel')")
    if cancel.count():
        cancel.click()
        page.wait_for_selector("#run-progress .badge-cancelled, #run-progress .badge-succeeded, "
                               "#run-progress:has-text('Stopping')")
    new_dataset(page, base, "Axe empty")
    assert problems(axe, page) == []
    page.click("[data-train-missing]")
    page.wait_for_selector(".not-ready")
    assert problems(axe, page) == []
    page.context.close()


def test_admin_pages(live_server, browser, axe):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    register(page, live_server, "axe-admin")
    run_server_cli("create-admin", "--username", "axe-admin", "--password", "correct horse")
    run_server_cli("create-admin", "--username", "axe-helped", "--password", "correct horse")
    reset_page = run_server_cli("reset-link", "axe-helped").strip().splitlines()[-1]
    paths = ["/admin/", "/admin/users", "/admin/queue", "/admin/networks", "/admin/limits", reset_page]
    assert walk(axe, page, live_server, paths) == {}
    page.goto(live_server + "/admin/users")  # a reset link shown in its row
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("tr:has-text('axe-helped') button:has-text('Reset password')")
    page.wait_for_selector("tr:has-text('axe-helped') .reset-link")
    assert problems(axe, page) == []
    page.close()


def test_pages_in_dark_mode(trained_studio, browser, axe):
    """A reader whose system is set to dark gets the dark palette (style.css), and it passes axe too:
    every text colour keeps its contrast on the darker backgrounds."""
    page = trained_studio.page(browser)
    page.emulate_media(color_scheme="dark")
    d, m = trained_studio.dataset_id, trained_studio.run_id
    page.goto(f"{trained_studio.base}/datasets")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 21, 28)", background  # --bg of the dark palette
    # one page of each kind of part (grid and chips, forms, results and charts, tables, code); the light
    # walks above cover every page
    paths = [f"/datasets/{d}", f"/datasets/{d}/label", f"/datasets/{d}/classes", f"/datasets/{d}/train",
             f"/models/{m}", f"/models/{m}/try", "/tokens"]
    assert walk(axe, page, trained_studio.base, paths) == {}
    page.goto(f"{trained_studio.base}/datasets/{d}/label")
    page.locator("[data-tile]").first.click()
    with page.expect_response(lambda r: "/images/label" in r.url):
        page.keyboard.press("u")
    page.wait_for_selector("[data-toast]")
    assert problems(axe, page) == []
    page.context.close()
