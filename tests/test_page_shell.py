"""What every page shares: favicon, skip link, the highlighted menu entry."""
from __future__ import annotations

import re


def _active(html: str) -> list[str]:
    return re.findall(r'<a href="[^"]*" class="active" aria-current="page">([^<]*)</a>', html)


def test_favicon_is_served_and_linked(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml" and b"<svg" in response.data
    response.close()
    html = client.get("/login").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200
    icon.close()
    ico = client.get("/static/favicon.ico")  # what the rq-dashboard pages link (url_for('static', ...))
    assert ico.status_code == 200 and ico.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    ico.close()


def test_skip_link_comes_first_and_targets_the_main_content(client):
    html = client.get("/login").get_data(as_text=True)
    assert html.index('href="#content">Skip to content</a>') < html.index('<header class="topbar">')
    assert '<main class="container" id="content" tabindex="-1">' in html


def test_the_menu_highlights_the_section_of_the_page(logged_in):
    assert _active(logged_in.get("/datasets").get_data(as_text=True)) == ["Datasets"]
    assert _active(logged_in.get("/models").get_data(as_text=True)) == ["Models"]
    assert _active(logged_in.get("/tokens").get_data(as_text=True)) == ["API"]
    assert _active(logged_in.get("/account").get_data(as_text=True)) == ["alice"]
