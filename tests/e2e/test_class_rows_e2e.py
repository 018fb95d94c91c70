"""The class rows of a dataset's Classes page (colour, name, count, Save, ↑, ↓, Delete) lay out the same way
in every row: two lines on a phone, one from 720 px, in English and in Portuguese (longer words); and the
colour picker wears the page's colours in dark mode, not the browser's grey button face."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import new_dataset
from tests.e2e.test_accounts_e2e import register

NAMES = ("ants", "a very long class name for ladybirds and beetles", "Supercalifragilisticexpialidocious_insects")

# Each row's parts: their boxes, and whether a button's text fits inside it.
ROWS = """() => [...document.querySelectorAll('form.ds-classrow')].map(form => {
  const box = e => { const b = e.getBoundingClientRect(); return {left: b.left, right: b.right, top: b.top,
                                                                  bottom: b.bottom, mid: (b.top + b.bottom) / 2}; };
  const q = s => form.querySelector(s);
  return {form: box(form), swatch: box(q('input[type=color]')), name: box(q('input[type=text]')),
          count: box(q('.ds-count')), save: box(q('.ds-classsave')),
          buttons: [...q('.ds-classactions').querySelectorAll('button')].map(box),
          fits: [...form.querySelectorAll('button')].every(b => b.scrollWidth <= b.clientWidth)};
})"""


@pytest.fixture(scope="module")
def classes_page(live_server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    register(page, live_server, "rowan")
    dataset_id = new_dataset(page, live_server, "Insects")
    for name in NAMES:
        page.goto(f"{live_server}/datasets/{dataset_id}/classes")
        page.fill("input[aria-label='New class name']", name)
        page.click("button:has-text('Add class')")
        page.wait_for_selector(f"text=Class “{name}” added.")
    state = page.context.storage_state()
    page.context.close()
    viewer = browser.new_page(viewport={"width": 1280, "height": 900})
    register(viewer, live_server, "rowan-viewer")
    viewer_state = viewer.context.storage_state()
    viewer.context.close()
    page = browser.new_context(viewport={"width": 1280, "height": 900}, storage_state=state).new_page()
    page.goto(f"{live_server}/datasets/{dataset_id}/sharing")
    page.fill("#share-username", "rowan-viewer")
    page.click("button:has-text('Share')")
    page.wait_for_selector("#shares td:has-text('rowan-viewer')")
    page.context.close()
    return f"{live_server}/datasets/{dataset_id}/classes", state, viewer_state


def _open(browser, classes_page, width, locale, scheme="light", viewer=False):
    url, state, viewer_state = classes_page
    state = viewer_state if viewer else state
    context = browser.new_context(viewport={"width": width, "height": 900}, storage_state=state, locale=locale,
                                  color_scheme=scheme)
    page = context.new_page()
    page.goto(url)
    assert page.get_attribute("html", "lang") == locale
    return page


def _same_line(*boxes) -> bool:
    return max(b["mid"] for b in boxes) - min(b["mid"] for b in boxes) < 2


def _inside(inner, outer) -> bool:
    return inner["left"] >= outer["left"] - .5 and inner["right"] <= outer["right"] + .5


@pytest.mark.parametrize("locale", ["en", "pt-BR"])
def test_class_rows_take_two_tidy_lines_on_a_phone(browser, classes_page, shoot, locale):
    page = _open(browser, classes_page, 390, locale)
    shoot(page, f"classes_390_{locale}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    rows = page.evaluate(ROWS)
    assert len(rows) == len(NAMES)
    for row in rows:
        parts = [row["swatch"], row["name"], row["count"], row["save"], *row["buttons"]]
        assert all(_inside(p, row["form"]) for p in parts) and row["fits"]
        assert _same_line(row["swatch"], row["name"], row["save"])  # what you edit, and Save, together
        assert _same_line(row["count"], *row["buttons"])  # ↑ ↓ Delete never split over two lines
        assert row["count"]["top"] >= row["name"]["bottom"]  # exactly two lines
        assert row["name"]["right"] - row["name"]["left"] >= 150  # the name keeps room to be read
        assert abs(row["buttons"][-1]["right"] - row["save"]["right"]) < 1  # both lines end at the same edge
    page.context.close()


@pytest.mark.parametrize("locale", ["en", "pt-BR"])
def test_class_rows_take_one_line_each_on_a_wide_screen_with_the_buttons_in_columns(browser, classes_page, locale):
    page = _open(browser, classes_page, 1280, locale)
    rows = page.evaluate(ROWS)
    for row in rows:
        assert _same_line(row["swatch"], row["name"], row["count"], row["save"], *row["buttons"]) and row["fits"]
    assert len({round(row["save"]["left"]) for row in rows}) == 1  # the Save buttons line up
    page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_colour_picker_wears_the_page_colours(browser, classes_page, scheme):
    """Chromium draws <input type=color> as a grey button (in dark mode a light grey frame round the colour):
    it takes the fields' background and border instead."""
    page = _open(browser, classes_page, 390, "en", scheme)
    picker = page.locator("form.ds-classrow input[type=color]").first
    got = picker.evaluate("""e => { const s = getComputedStyle(e), probe = document.createElement('div');
        probe.style.background = 'var(--field)'; probe.style.borderColor = 'var(--line)';
        document.body.append(probe); const p = getComputedStyle(probe);
        const r = [s.backgroundColor, p.backgroundColor, s.borderTopColor, p.borderTopColor, s.appearance];
        probe.remove(); return r; }""")
    background, field, border, line, appearance = got
    assert background == field and border == line and appearance == "none", got
    if scheme == "dark":
        assert background == "rgb(20, 24, 33)"  # the dark field, not a grey button face
    text_box = page.locator("form.ds-classrow input[type=text]").first.bounding_box()
    assert abs(picker.bounding_box()["height"] - text_box["height"]) < 3  # as tall as the name beside it
    page.context.close()


def test_a_viewer_sees_each_class_on_one_line_with_a_long_name_wrapping_in_its_column(browser, classes_page):
    page = _open(browser, classes_page, 390, "pt-BR", viewer=True)
    assert page.locator("form.ds-classrow").count() == 0
    rows = page.evaluate("""() => [...document.querySelectorAll('span.ds-classrow')].map(row => {
      const top = s => row.querySelector(s).getBoundingClientRect();
      const r = row.getBoundingClientRect(), sw = top('.ds-swatch'), name = top('strong'), count = top('.ds-count');
      return {first: Math.abs(name.top - count.top) < 2 && sw.top >= name.top && sw.bottom <= name.top + 24,
              inside: sw.left >= r.left && count.right <= r.right + .5 && name.right <= count.left};
    })""")
    assert len(rows) == len(NAMES) and all(r["first"] and r["inside"] for r in rows), rows
    page.context.close()
