"""Phone width (390 px): tables stay usable (stacked rows, or a scroll with a visible cue), nothing pushes
the page sideways, every dataset tab can be read."""
from __future__ import annotations

from tests.e2e.conftest import new_dataset, run_server_cli

PHONE = {"width": 390, "height": 844}
PAGE_WIDTH = "() => document.documentElement.scrollWidth"


def _inside_screen(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_tokens_sharing_tabs_and_api_reference_fit_a_phone(trained_studio, browser, shoot):
    base = trained_studio.base
    run_server_cli("create-admin", "--username", "pal", "--password", "correct horse")  # not /register: rate-limited
    page = trained_studio.page(browser, **PHONE)
    dataset_id = new_dataset(page, base, "Garden birds of the northern hemisphere")
    for name in ("camera script on the lab PC", "nightly export"):
        page.goto(base + "/tokens")
        page.fill("#token-name", name)
        page.click("button:has-text('Create token')")
        page.wait_for_selector(f"#tokens td:has-text('{name}')")
    page.goto(base + "/tokens")
    shoot(page, "tokens_390")
    assert page.evaluate(PAGE_WIDTH) <= PHONE["width"]
    assert _inside_screen(page, "#tokens button:has-text('Revoke')")
    assert page.is_visible("#tokens td[data-label='Last used']")  # a stacked row names its cells

    page.goto(f"{base}/datasets/{dataset_id}/sharing")
    page.fill("#share-username", "pal")
    page.click("button:has-text('Share')")
    page.wait_for_selector("#shares td:has-text('pal')")
    shoot(page, "sharing_390")
    assert _inside_screen(page, "#shares button:has-text('Remove access')")
    for tab in page.locator(".ds-tabs a").all():
        box = tab.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], tab.inner_text()
        assert tab.evaluate("a => a.scrollWidth <= a.clientWidth"), tab.inner_text()  # not cut to "S"

    page.goto(base + "/api/docs")
    assert page.evaluate(PAGE_WIDTH) <= PHONE["width"]
    page.context.close()


def test_the_models_table_keeps_names_readable_and_shows_it_scrolls(trained_studio, browser, shoot):
    page = trained_studio.page(browser, **PHONE)
    page.goto(trained_studio.base + "/models")
    shoot(page, "models_list_390")
    assert page.evaluate(PAGE_WIDTH) <= PHONE["width"]
    name_cell = page.locator("table.models tbody td:nth-child(2)").first.bounding_box()
    assert name_cell["width"] >= 150  # not one word a line
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("w => w.scrollWidth > w.clientWidth")  # it scrolls sideways...
    cue = wrap.evaluate("w => getComputedStyle(w).backgroundAttachment")
    assert "local" in cue and "scroll" in cue  # ...with the edge shadows that say so
    page.context.close()


def test_a_model_page_in_spanish_fits_a_phone(trained_studio, browser):
    """'Trained on' (Clase, Imágenes, Aprender, Comprobar, Prueba) is wider than a phone's column in Spanish
    and Portuguese: it scrolls inside its .table-wrap, with the edge shadow, and the page does not move
    sideways."""
    for locale in ("es-ES", "pt-BR"):
        context = browser.new_context(viewport=PHONE, storage_state=trained_studio.state, locale=locale)
        page = context.new_page()
        page.goto(f"{trained_studio.base}/models/{trained_studio.run_id}")
        assert page.evaluate(PAGE_WIDTH) <= PHONE["width"], locale
        wrap = ".table-wrap:has(> table.snapshot)"
        assert _inside_screen(page, wrap)
        assert page.locator(wrap).evaluate("w => w.scrollWidth > w.clientWidth"), locale  # it does scroll
        assert "local" in page.locator(wrap).evaluate("w => getComputedStyle(w).backgroundAttachment")
        context.close()
