"""'Why this answer?' on the Try page, in Chromium: the button asks the explain route and lays the map over
the model's crop of the preview; pressing it again hides the map, and again shows it without asking twice."""
from __future__ import annotations

from tests.e2e.conftest import colour_png


def test_why_lays_the_map_over_the_picture_and_hides_it_again(trained_studio, browser, shoot):
    page = trained_studio.page(browser)
    explains = []
    page.on("request", lambda r: explains.append(r.url) if r.url.endswith("/explain") else None)
    page.goto(f"{trained_studio.base}/models/{trained_studio.run_id}/try")
    page.set_input_files("#try-files", [{"name": "red.png", "mimeType": "image/png",
                                         "buffer": colour_png((210, 40, 40), 5, size=120)},
                                        {"name": "blue.png", "mimeType": "image/png",
                                         "buffer": colour_png((40, 60, 210), 6, size=120)}])
    page.wait_for_selector("#try-results .result:nth-child(2) .explain-button", timeout=60_000)
    # each card's "Why?" is told apart by a screen reader: its description is the picture's file name
    described = page.locator("#try-results .explain-button").evaluate_all(
        "bs => bs.map(b => document.getElementById(b.getAttribute('aria-describedby')).textContent)")
    assert described == ["red.png", "blue.png"]
    why = page.locator("#try-results .result").first.locator(".explain-button")
    assert why.inner_text() == "Why?" and why.get_attribute("aria-expanded") == "false"
    assert why.evaluate("b => b.tagName === 'BUTTON' && b.type === 'button'")

    why.focus()  # a real button: the keyboard works it
    page.keyboard.press("Enter")
    page.wait_for_selector("#try-results .explain-view", timeout=60_000)
    assert why.get_attribute("aria-expanded") == "true"
    assert page.locator("#try-results .explain-cell").count() == 64  # 8 x 8 tiles over the crop
    legend = page.inner_text("#try-results .explain-legend")
    assert legend in ("Brighter areas mattered most for ‘red’.", "No single part of the picture changed the answer ‘red’ much.")
    assert page.get_attribute("#try-results .explain-view", "aria-label") == legend
    assert page.locator("#try-results img.thumb").first.is_hidden()  # the crop takes the preview's place
    assert page.evaluate("(() => { const c = document.querySelector('#try-results .explain-crop');"
                         " return c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data[0]; })()") > 150
    shoot(page, "try_explain_1280")

    why.click()  # the toggle: the map goes, the preview comes back
    assert page.locator("#try-results .explain").first.is_hidden() and page.locator("#try-results img.thumb").first.is_visible()
    why.click()
    assert page.locator("#try-results .explain-view").is_visible()
    assert len(explains) == 1, explains
    page.context.close()
