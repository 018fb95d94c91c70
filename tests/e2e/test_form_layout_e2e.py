"""The train form laid out in Chromium (served by the test client, no live server): every choice of every
select of the Advanced settings fits its box, on a desktop and on a phone. The session's browser (one
Playwright per process: a second sync_playwright() inside the first one's loop is refused)."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.training.conftest import make_dataset  # noqa: F401 (a fixture)

# The width a select needs for its longest choice next to the width it has.
MEASURE = """() => [...document.querySelectorAll('#run-form select')].map(s => {
    const had = s.offsetWidth, chosen = s.value, widest = [...s.options].map(o => {
        s.value = o.value; s.style.width = 'max-content'; const w = s.offsetWidth; s.style.width = ''; return w; });
    s.value = chosen;
    return [s.name, Math.max(...widest), had]; })"""


def _serve_from(client):
    def handle(route):
        parts = urlsplit(route.request.url)
        response = client.get(parts.path + (f"?{parts.query}" if parts.query else ""),
                              headers={"Accept-Language": route.request.headers.get("accept-language", "en")})
        route.fulfill(status=response.status_code, body=response.get_data(),
                      headers={"Content-Type": response.headers.get("Content-Type", "text/html")})
        response.close()

    return handle


@pytest.mark.parametrize("lang", ["en", "pt-BR", "es"])
def test_every_select_choice_fits_on_a_desktop_and_a_phone(logged_in, make_dataset, browser, lang):
    dataset = make_dataset(logged_in.user)
    for width in (1280, 390):
        page = browser.new_page(viewport={"width": width, "height": 900}, extra_http_headers={"Accept-Language": lang})
        page.route("**/*", _serve_from(logged_in))
        page.goto(f"http://studio.test/datasets/{dataset.id}/train")
        page.click("details.advanced summary")
        for name, needs, has in page.evaluate(MEASURE):
            assert needs <= has, (lang, width, name, needs, has)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen
        page.close()
