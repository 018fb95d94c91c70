"""Find by file name in the labeling grid, in Chromium: typing searches (only the grid is swapped, the box
keeps its focus and keys typed there are text, not shortcuts), the URL follows so Back works (one step per
search, not one per pause in typing), a class chip searches within the class, and × clears the search."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.e2e.conftest import colour_png, new_dataset
from tests.e2e.test_accounts_e2e import register

NAMES = ["ant-nest.png", "Giant.png", "bee_1.png", "bee1.png"]


def _grid_of_names(live_server, browser, user: str, dataset: str, size=(1280, 900)):
    """A new user's dataset holding NAMES, its labeling grid open: (page, dataset id)."""
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    register(page, live_server, user)
    dataset_id = new_dataset(page, live_server, dataset)
    page.set_input_files("input[name=files]", [{"name": n, "mimeType": "image/png", "buffer": colour_png((9, 9, 9), i)}
                                               for i, n in enumerate(NAMES)])
    page.click("[data-upload-button]")
    page.wait_for_selector("[data-upload-results] .ds-upload-status:text('Done')")
    page.goto(f"{live_server}/datasets/{dataset_id}/label")
    return page, dataset_id


def test_typing_finds_by_file_name_and_back_returns(live_server, browser, shoot):
    page, dataset_id = _grid_of_names(live_server, browser, "finder", "Find")
    assert page.locator("[data-tile]").count() == 4
    page.click("#find-q")
    page.keyboard.type("ANT")  # 'a' is select-all on the grid: here it is a letter
    page.wait_for_selector(".ds-find-count:text('2 images match “ANT”')")
    assert page.locator("[data-tile]").count() == 2 and page.locator("[data-tile].selected").count() == 0
    assert page.evaluate("document.activeElement.id") == "find-q" and "q=ANT" in page.url
    page.evaluate(WATCH)
    _answered(page, lambda: page.keyboard.press("Enter"), form=1)  # Enter settles it: typing on is a step
    page.fill("#find-q", "_1")
    page.wait_for_selector(".ds-find-count:text('1 image matches “_1”')")  # _ is no wildcard
    assert page.get_attribute("[data-tile]", "title") == "bee_1.png"
    shoot(page, "find_by_name_1280")
    page.go_back()
    page.wait_for_selector(".ds-find-count:text('2 images match “ANT”')")
    assert page.input_value("#find-q") == "ANT"
    page.click(".ds-chip:has-text('Unlabeled')")
    page.wait_for_selector(".ds-chip.active:has-text('Unlabeled')")
    assert "filter=unlabeled" in page.url and "q=ANT" in page.url
    page.click("[data-find-clear]")
    page.wait_for_selector(".ds-find-count", state="detached")
    assert page.locator("[data-tile]").count() == 4 and page.input_value("#find-q") == ""
    assert "filter=unlabeled" in page.url and "q=ANT" not in page.url  # the form sends an empty q: no search
    page.context.close()


def test_back_from_another_page_brings_back_the_whole_search_page(live_server, browser):
    """The search's address answers htmx with the grid alone: Back from another page must not show that
    fragment out of the browser's cache (Vary: HX-Request), but the whole page with the search."""
    page, dataset_id = _grid_of_names(live_server, browser, "finder2", "Find back")
    page.click("#find-q")
    page.keyboard.type("bee")
    page.wait_for_selector(".ds-find-count:text('2 images match “bee”')")
    # the count line is inside the swapped grid: a live region that stays says it to screen readers
    status = page.get_by_role("status").filter(has_text="images match")
    assert status.count() == 1 and status.text_content() == "2 images match “bee”"
    assert status.evaluate("e => e.closest('#image-grid') === null")
    page.click(".ds-tabs a:has-text('Classes')")
    page.wait_for_url(f"**/datasets/{dataset_id}/classes")
    page.go_back()
    page.wait_for_selector(".ds-find-count:text('2 images match “bee”')")
    assert page.locator("header.topbar").count() == 1 and page.locator("link[rel=stylesheet]").count() >= 1
    assert page.input_value("#find-q") == "bee" and page.locator("[data-tile]").count() == 2
    # htmx keeps copies of 10 pages: Back to a search it has no copy of asks the server for the page
    page.evaluate(WATCH)
    # "ant" and Enter: a step of its own, even if typing had made the "bee" one
    _answered(page, lambda: (page.fill("#find-q", "ant"), page.keyboard.press("Enter")), typed=1, form=1)
    assert page.locator(".ds-find-count").text_content() == "2 images match “ant”"
    page.evaluate("sessionStorage.removeItem('htmx-history-cache')")
    page.go_back()
    page.wait_for_selector(".ds-find-count:text('2 images match “bee”')")
    assert page.locator("header.topbar").count() == 1 and page.locator("form[data-find]").count() == 1
    assert page.locator(".ds-filters").count() == 1 and page.locator("[data-tile]").count() == 2
    page.context.close()


WATCH = """() => { window.answered = {typed: 0, form: 0};
  document.addEventListener("htmx:afterRequest", e => { window.answered[e.detail.elt.id === "find-q" ? "typed" : "form"]++; }); }"""


def _answered(page, action, typed: int = 0, form: int = 0) -> int:
    """Do `action`, then wait until the searches it starts (`typed`: by pauses in typing, `form`: by Enter or
    the ×) are answered and swapped, and none is running (page.evaluate(WATCH) first). The number of history
    entries then."""
    before = page.evaluate("window.answered")
    action()
    page.wait_for_function("([b, t, f]) => window.answered.typed >= b.typed + t && window.answered.form >= b.form + f"
                           " && !document.querySelector('.htmx-request')", arg=[before, typed, form])
    return page.evaluate("history.length")


def _shows(page, q: str, tiles: int) -> None:
    """Wait until Back or Forward has brought back the grid of search `q`: the address, the box, the tiles."""
    page.wait_for_function("([q, n]) => (new URLSearchParams(location.search).get('q') || '') === q && "
                           "document.getElementById('find-q').value === q && "
                           "document.querySelectorAll('[data-tile]').length === n", arg=[q, tiles])


def test_a_search_is_one_history_step_not_one_per_pause_in_typing(live_server, browser):
    """Every pause in typing searches; the address follows by replacing the entry the search began, so
    Back leaves a search in one step to where it started. Enter on the text already shown adds no step (Back
    would seem to do nothing); typing on after it, or clearing with ×, adds one. Back and Forward restore
    each, from htmx's copy or, without one, from the server's whole page."""
    page, dataset_id = _grid_of_names(live_server, browser, "finder4", "Find history")
    page.evaluate(WATCH)
    start = page.evaluate("history.length")
    searched = []
    page.on("request", lambda r: "/label?" in r.url and searched.append(parse_qs(urlsplit(r.url).query).get("q")))
    page.click("#find-q")
    typed = _answered(page, lambda: page.keyboard.type("bee", delay=450), typed=3)  # a pause after each letter
    assert typed == start + 1 and "q=bee" in page.url
    assert page.locator(".ds-find-count").text_content() == "2 images match “bee”"
    assert searched == [["b"], ["be"], ["bee"]]  # three searches, one step
    assert _answered(page, lambda: page.keyboard.press("Enter"), form=1) == start + 1  # the same: no step
    assert _answered(page, lambda: page.keyboard.type("_1", delay=450), typed=2) == start + 2  # a new one
    assert page.locator(".ds-find-count").text_content() == "1 image matches “bee_1”"
    assert _answered(page, lambda: page.click("[data-find-clear]"), form=1) == start + 3  # cleared: a step
    assert page.locator("[data-tile]").count() == 4 and page.locator(".ds-find-count").count() == 0
    page.go_back()
    _shows(page, "bee_1", 1)
    page.go_back()
    _shows(page, "bee", 2)
    page.go_back()
    _shows(page, "", 4)  # where the search began: still the grid
    assert page.url.endswith("/label") and page.locator("header.topbar").count() == 1
    page.evaluate("sessionStorage.removeItem('htmx-history-cache')")  # no copies: the server's whole page
    page.go_forward()
    _shows(page, "bee", 2)
    assert page.locator("header.topbar").count() == 1 and page.locator("form[data-find]").count() == 1
    assert page.locator(".ds-filters-scope").text_content() == "Matching “bee”:"
    page.context.close()


def test_switching_language_keeps_the_search_typed(live_server, browser):
    """The header's switcher came back to the address the page was served at, so a search typed since (the
    address htmx pushed) was lost on PT/ES; it now comes back to the search."""
    page, dataset_id = _grid_of_names(live_server, browser, "finder3", "Find lang", (390, 844))
    page.click("#find-q")
    page.keyboard.type("bee")
    page.wait_for_selector(".ds-find-count:text('2 images match “bee”')")
    page.locator(".lang-switch button[value=pt_BR]").dispatch_event("click")  # folded in the phone menu
    page.wait_for_selector("html[lang=pt-BR]")
    assert "q=bee" in page.url and page.input_value("#find-q") == "bee"
    assert page.locator("[data-tile]").count() == 2
    page.context.close()
