"""A name typed as one long word wraps: the page never grows wider than the screen, and the Undo toast's
button stays in sight."""
from __future__ import annotations

from tests.e2e.conftest import new_dataset
from tests.e2e.test_accounts_e2e import register

LONG = "X" * 120
WIDER_THAN_SCREEN = "document.documentElement.scrollWidth > document.documentElement.clientWidth"


def test_a_long_dataset_name_wraps_and_its_undo_stays_in_sight(live_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    register(page, live_server, "longnames")
    dataset_id = new_dataset(page, live_server, LONG)
    assert LONG in page.inner_text("#flashes")
    assert not page.evaluate(WIDER_THAN_SCREEN), "the dataset page is wider than the screen"
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"{live_server}/datasets/{dataset_id}")
        assert not page.evaluate(WIDER_THAN_SCREEN), f"the dataset page is wider than {width} px"
        page.goto(f"{live_server}/datasets/{dataset_id}/delete")
        assert not page.evaluate(WIDER_THAN_SCREEN), f"the delete page is wider than {width} px"
        page.click("main form button.danger")
        page.wait_for_selector("[data-toast] [data-undo]")
        box = page.locator("[data-toast] [data-undo]").bounding_box()
        assert box and 0 <= box["x"] and box["x"] + box["width"] <= width, f"Undo is off-screen at {width} px"
        page.click("[data-toast] [data-undo]")
        page.wait_for_url(f"**/datasets/{dataset_id}")
    context.close()
