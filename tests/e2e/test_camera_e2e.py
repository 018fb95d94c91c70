"""The camera, in Chromium with its fake camera (a moving test pattern, permission granted without asking):
photos taken into a class on a dataset page (one click, held down with the mouse and with Space) are
counted and land in that class; the Try page answers live, one request at a time; camera errors are said
in plain words; Stop ends every track."""
from __future__ import annotations

import re
import time

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, new_dataset
from tests.e2e.test_accessibility_e2e import problems
from tests.e2e.test_accounts_e2e import register

FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

# Counts fetches to predict URLs in flight (and the most at once), and keeps the camera's tracks, so the
# test can check that a stopped camera really is off.
WATCH = """
window.__predict = { now: 0, most: 0, total: 0 };
const realFetch = window.fetch;
window.fetch = function (url, options) {
  const predict = String(url).endsWith('/predict');
  if (!predict) return realFetch.apply(this, arguments);
  window.__predict.now += 1; window.__predict.total += 1;
  window.__predict.most = Math.max(window.__predict.most, window.__predict.now);
  return realFetch.apply(this, arguments).finally(() => { window.__predict.now -= 1; });
};
window.__tracks = [];
const realGum = navigator.mediaDevices && navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
if (realGum) navigator.mediaDevices.getUserMedia = async (c) => {
  const stream = await realGum(c); window.__tracks.push(...stream.getTracks()); return stream; };
"""
TRACKS_ENDED = "() => window.__tracks.length > 0 && window.__tracks.every(t => t.readyState === 'ended')"


@pytest.fixture(scope="module")
def camera_browser(browser):
    """A second Chromium from the session's Playwright, with the fake camera (the session's browser was
    launched without those flags)."""
    b = browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + FAKE_CAMERA)
    yield b
    b.close()


def _page(camera_browser, base, width=1280, state=None):
    context = camera_browser.new_context(viewport={"width": width, "height": 900}, storage_state=state,
                                         permissions=["camera"])
    context.add_init_script(WATCH)
    return context.new_page()


def until(page, expression: str, timeout: float = 15) -> None:
    """Wait until `expression` is true in the page (page.wait_for_function evaluates a string, which the
    app's Content-Security-Policy forbids; page.evaluate does not)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        page.wait_for_timeout(100)


def _counts(page) -> str:
    return page.inner_text("#camera [data-camera-counts]")


def test_photos_are_taken_into_a_class_and_counted(live_server, camera_browser, shoot):
    base = live_server
    page = _page(camera_browser, base)
    register(page, base, "camera-taker")
    d = new_dataset(page, base, "Desk things")
    for name in ("mugs", "pens"):
        page.goto(f"{base}/datasets/{d}/classes")
        page.fill("input[aria-label='New class name']", name)
        page.click("button:has-text('Add class')")
        page.wait_for_selector(f"text=Class “{name}” added.")
    page.goto(f"{base}/datasets/{d}")
    assert page.is_hidden("#camera [data-camera-start]")  # collapsed: nothing starts by itself
    assert page.evaluate("window.__tracks.length") == 0
    page.click("#camera summary")
    page.select_option("#camera-class", label="pens")
    page.click("#camera [data-camera-start]")
    until(page, "document.querySelector('#camera video').videoWidth > 0")
    assert page.inner_text("#camera [data-camera-status]") == "Camera on."

    page.click("#camera [data-camera-shot]")
    page.click("#camera [data-camera-shot]")
    until(page, "document.querySelector('#camera [data-camera-counts]').textContent.includes('2 images added')")
    assert _counts(page).startswith("2 photos taken · 2 sent · 2 images added"), _counts(page)

    burst = page.locator("#camera [data-camera-burst]")
    box = burst.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(1100)
    assert burst.get_attribute("aria-pressed") == "true"
    page.mouse.up()
    assert burst.get_attribute("aria-pressed") is None
    burst.focus()
    page.keyboard.down(" ")
    page.wait_for_timeout(700)
    page.keyboard.up(" ")
    taken = int(re.match(r"(\d+) photos taken", _counts(page)).group(1))
    assert taken >= 2 + 5 + 3, _counts(page)  # 5 a second while held
    until(page, f"document.querySelector('#camera [data-camera-counts]').textContent"
                f".includes('{taken} images added')", timeout=30)
    assert _counts(page) == f"{taken} photos taken · {taken} sent · {taken} images added"
    # the dataset's counts were refreshed in place: every photo is in "pens", none unlabeled
    pens = page.locator("#summary .ds-bars li", has_text="pens").locator(".ds-count")
    pens.filter(has_text=str(taken)).wait_for(timeout=10_000)
    assert page.locator("#summary .ds-bars li", has_text="unlabeled").locator(".ds-count").inner_text() == "0"
    shoot(page, "camera_capture_1280")

    page.click("#camera [data-camera-stop]")
    until(page, TRACKS_ENDED)
    assert page.is_hidden("#camera video") and page.evaluate("document.querySelector('#camera video').srcObject") is None
    assert page.inner_text("#camera [data-camera-status]") == "Camera off."
    assert problems(Axe(), page) == []

    # a phone's width: the panel fits, its buttons are usable; hiding the page stops the camera
    phone = _page(camera_browser, base, width=390, state=page.context.storage_state())
    phone.goto(f"{base}/datasets/{d}")
    phone.click("#camera summary")
    phone.click("#camera [data-camera-start]")
    until(phone, "document.querySelector('#camera video').videoWidth > 0")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    for button in ("shot", "burst", "stop"):
        assert phone.locator(f"#camera [data-camera-{button}]").bounding_box()["width"] <= 390
    shoot(phone, "camera_capture_390")
    phone.evaluate("""() => { Object.defineProperty(document, 'hidden', { get: () => true, configurable: true });
                              document.dispatchEvent(new Event('visibilitychange')); }""")
    until(phone, TRACKS_ENDED)
    assert "page was hidden" in phone.inner_text("#camera [data-camera-status]")
    phone.context.close()
    page.context.close()


@pytest.mark.parametrize("error, said", [
    ("NotAllowedError", "Camera access was refused."),
    ("NotFoundError", "No camera was found."),
    ("NotReadableError", "The camera is busy"),
    ("insecure", "only works on a secure page"),
])
def test_camera_errors_are_said_in_plain_words(live_server, camera_browser, error, said):
    page = _page(camera_browser, live_server)
    register(page, live_server, f"camera-{error.lower()}")
    d = new_dataset(page, live_server, "Errors")
    if error == "insecure":
        page.add_init_script("Object.defineProperty(window, 'isSecureContext', { get: () => false });")
    else:
        page.add_init_script(f"""navigator.mediaDevices.getUserMedia = () =>
            Promise.reject(new DOMException('refused', '{error}'));""")
    page.goto(f"{live_server}/datasets/{d}")
    page.click("#camera summary")
    page.click("#camera [data-camera-start]")
    page.wait_for_selector("#camera [data-camera-error]:not([hidden])", timeout=10_000)
    assert said in page.inner_text("#camera [data-camera-error]")
    assert page.is_visible("#camera [data-camera-start]") and page.is_hidden("#camera [data-camera-stop]")
    if error == "insecure":
        assert "https://" in page.inner_text("#camera [data-camera-error]")
    page.context.close()


def test_the_try_page_answers_live_one_frame_at_a_time(trained_studio, camera_browser, shoot):
    base, m = trained_studio.base, trained_studio.run_id
    for width in (1280, 390):
        page = _page(camera_browser, base, width=width, state=trained_studio.state)
        page.goto(f"{base}/models/{m}/try")
        live = page.locator("[data-camera=live]")
        live.locator("summary").click()
        live.locator("[data-camera-start]").click()
        until(page, "window.__predict.total >= 4", timeout=30)
        verdict = live.locator("[data-camera-verdict]").inner_text()
        assert verdict in ("red", "blue") or verdict.startswith("Not sure — best guess"), verdict
        if verdict in ("red", "blue"):
            assert re.fullmatch(r"Confidence: \d+(\.\d)?%", live.locator("[data-camera-confidence]").inner_text())
        assert live.locator("[data-camera-said]").inner_text()  # said once to a screen reader
        assert page.evaluate("window.__predict.most") == 1  # never two frames in flight
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        shoot(page, f"camera_try_{width}")
        assert problems(Axe(), page) == []
        live.locator("[data-camera-stop]").click()
        until(page, TRACKS_ENDED)
        sent = page.evaluate("window.__predict.total")
        page.wait_for_timeout(800)
        assert page.evaluate("window.__predict.total") == sent and page.evaluate("window.__predict.now") == 0
        page.context.close()


def _add_class(page, base, dataset_id, name):
    page.goto(f"{base}/datasets/{dataset_id}/classes")
    page.fill("input[aria-label='New class name']", name)
    page.click("button:has-text('Add class')")
    page.wait_for_selector(f"text=Class “{name}” added.")


def test_the_class_list_follows_classes_added_in_another_tab(live_server, browser):
    """Opening the panel again (or coming back to the tab) reads the classes again, keeping the choice."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    register(page, live_server, "camera-classes")
    d = new_dataset(page, live_server, "Shelf")
    _add_class(page, live_server, d, "cups")
    page.goto(f"{live_server}/datasets/{d}")
    page.click("#camera summary")
    page.select_option("#camera-class", label="No class (unlabeled)")
    other = page.context.new_page()
    _add_class(other, live_server, d, "plates")
    other.close()
    page.click("#camera summary")
    page.click("#camera summary")
    until(page, "[...document.querySelectorAll('#camera-class option')].some(o => o.textContent === 'plates')")
    assert page.evaluate("[...document.querySelectorAll('#camera-class option')].map(o => o.textContent)") == [
        "cups", "plates", "No class (unlabeled)"]
    assert page.evaluate("document.querySelector('#camera-class').selectedOptions[0].textContent") == \
        "No class (unlabeled)"
    page.context.close()
