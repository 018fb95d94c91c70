"""The first hour of a new user (issue #16): every rough edge a walk-through found, checked in Chromium
against gunicorn + a real worker. One account with one trained model is shared (tests/e2e/conftest.py)."""
from __future__ import annotations

import json
import re
import subprocess

from tests.e2e.conftest import colour_png, new_dataset


def test_the_api_page_example_works_when_pasted(trained_studio, browser, tmp_path, shoot):
    page = trained_studio.page(browser)
    page.goto(trained_studio.base + "/tokens")
    page.fill("#token-name", "my script")
    page.click("button:has-text('Create token')")
    example = page.locator("#tokens [data-curl-example]")
    example.wait_for()
    shoot(page, "api_token_1280")
    copy = page.locator("#tokens [data-copy]")
    copy.click()  # the shared copy button (app.js): the token is selected and the button says so
    page.wait_for_function("document.querySelector('#tokens [data-copy]').textContent.trim() === 'Copied'")
    command = example.inner_text()
    assert f"-F model={trained_studio.run_id}" in command
    (tmp_path / "photo.jpg").write_bytes(colour_png((210, 40, 40), 99))
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    answer = json.loads(done.stdout)
    assert answer["predictions"][0]["category"] == "red", answer
    # the only ready model of this account: the call works without naming it, too
    without = command.replace(f"-F model={trained_studio.run_id} ", "")
    answer = json.loads(subprocess.run(["bash", "-c", without], cwd=tmp_path, capture_output=True, text=True,
                                       timeout=60).stdout)
    assert answer["model"]["id"] == trained_studio.run_id, answer
    page.context.close()


def test_the_train_form_is_ready_to_start_with_a_prefilled_name(trained_studio, browser, shoot):
    page = trained_studio.page(browser)
    page.goto(f"{trained_studio.base}/datasets/{trained_studio.dataset_id}/train")
    name = page.locator("input[name=name]")
    assert re.fullmatch(r"Colours · Quick · \d{4}-\d\d-\d\d", name.input_value())
    assert page.evaluate("document.getElementById('run-form').checkValidity()")  # Start training submits
    page.check("input[name=mode][value=feature_extraction]")
    assert name.input_value().startswith("Colours · Feature extraction · ")
    name.fill("my own name")
    page.check("input[name=mode][value=quick]")
    assert name.input_value() == "my own name"  # what the user typed stays
    page.context.close()


def _unlabeled_count(page) -> str:
    return page.inner_text(".ds-filters a:has-text('Unlabeled') .ds-chip-n")


def _focused_image(page) -> str | None:
    """The image id of the tile that has the keyboard focus (None: the focus is not on a tile)."""
    return page.evaluate("document.activeElement.matches('[data-tile]') ? "
                         "document.activeElement.querySelector('input').value : null")


def test_labeling_keys_act_on_the_selection_only_and_every_action_can_be_undone(trained_studio, browser, shoot):
    base, dataset_id = trained_studio.base, trained_studio.dataset_id
    page = trained_studio.page(browser)
    page.on("dialog", lambda dialog: dialog.accept())
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.clock.install()  # the toast's 10 s pass at once at the end
    page.goto(f"{base}/datasets/{dataset_id}/label")
    with page.expect_response(lambda r: "filter=unlabeled" in r.url):
        page.click(".ds-filters a:has-text('Unlabeled')")
    page.wait_for_selector(".ds-filters a.active:has-text('Unlabeled')")
    assert page.locator("[data-tile]").count() == 3
    assert not page.evaluate("!!document.activeElement.closest('[data-tile]')")  # no tile took the focus
    page.keyboard.press("1")
    page.wait_for_selector("#flashes:has-text('Select one or more images first')")
    assert posts == [] and _unlabeled_count(page) == "3"

    ids = page.eval_on_selector_all("[data-tile] input", "boxes => boxes.map(b => b.value)")
    page.locator("[data-tile]").first.click()
    with page.expect_response(lambda r: "/images/label" in r.url):
        page.keyboard.press("1")
    toast = page.locator("[data-toast]")
    toast.wait_for()
    assert "1 image labeled." in toast.inner_text() and _unlabeled_count(page) == "2"
    assert _focused_image(page) == ids[1]  # the keyboard stays in the grid, on the next image
    shoot(page, "label_undo_toast_1280")
    with page.expect_response(lambda r: "/images/undo/" in r.url):
        toast.locator("[data-undo]").click()
    page.wait_for_selector("[data-toast]:has-text('previous class again')")
    assert _unlabeled_count(page) == "3"

    ids = page.eval_on_selector_all("[data-tile] input", "boxes => boxes.map(b => b.value)")
    page.locator("[data-tile]").nth(1).click()
    with page.expect_response(lambda r: "/images/delete" in r.url):
        page.keyboard.press("Delete")
    page.wait_for_selector("[data-toast]:has-text('1 image deleted.')")
    assert page.locator("[data-tile]").count() == 2 and _focused_image(page) == ids[2]
    with page.expect_response(lambda r: "/images/undo/" in r.url):
        page.keyboard.press("z")
    page.wait_for_selector("[data-toast]:has-text('1 image restored.')")
    assert page.locator("[data-tile]").count() == 3 and _unlabeled_count(page) == "3"
    assert _focused_image(page) == ids[1]  # z: the keyboard goes back to the image it brought back

    page.locator(".ds-filters a.active").focus()  # off the grid: an arrow key enters it, and that tile counts
    page.keyboard.press("ArrowRight")
    assert _focused_image(page) == ids[0]
    with page.expect_response(lambda r: "/images/label" in r.url):
        page.keyboard.press("1")
    page.wait_for_selector("[data-toast]:has-text('1 image labeled.')")
    page.keyboard.press("a")
    assert page.locator("[data-tile].selected").count() == 2
    page.keyboard.press("Escape")  # select none
    assert page.locator("[data-tile].selected").count() == 0
    page.clock.fast_forward(9_000)
    assert page.locator("[data-toast]").count() == 1
    page.clock.fast_forward(2_000)
    page.wait_for_selector("[data-toast]", state="detached", timeout=2_000)  # gone by itself after 10 s
    page.context.close()


def test_bad_advanced_settings_are_all_marked_at_once(trained_studio, browser, shoot):
    page = trained_studio.page(browser)
    page.goto(f"{trained_studio.base}/datasets/{trained_studio.dataset_id}/train")
    page.click("details.advanced summary")
    for name, value in (("epochs", "-3"), ("lr", "-1"), ("val_fraction", "0.9")):
        page.fill(f"input[name={name}]", value)
    with page.expect_response(lambda r: r.url.endswith("/train") and r.request.method == "POST") as answer:
        page.click("button:has-text('Start training')")
    assert answer.value.status == 422
    page.wait_for_selector("#run-form .form-error")
    assert page.locator("#run-form details.advanced").get_attribute("open") is not None
    for name, value in (("epochs", "-3"), ("lr", "-1"), ("val_fraction", "0.9")):
        field = page.locator(f"input[name={name}]")
        assert field.get_attribute("aria-invalid") == "true" and field.input_value() == value
        assert page.locator(f"#{name}-error").is_visible()
    shoot(page, "train_form_errors_1280")
    page.context.close()


def test_the_run_page_watched_to_the_end_shows_no_queued_banner(trained_studio):
    assert "Finished" in trained_studio.shown_when_finished
    assert "is queued" not in trained_studio.shown_when_finished


def test_results_open_with_the_score_in_plain_words_and_names_not_identifiers(trained_studio, browser, shoot):
    page = trained_studio.page(browser)
    run_id = trained_studio.run_id
    page.goto(f"{trained_studio.base}/models/{run_id}")
    headline = page.locator("#run-headline .results-head")
    assert re.search(r"Correct on \d+ of \d+ test images", headline.inner_text())
    assert headline.bounding_box()["y"] < page.locator(".charts").bounding_box()["y"]
    assert "EfficientNet-Lite0 · Quick" in page.inner_text(".page-head")
    assert "efficientnet_lite0" not in page.inner_text("main")
    shoot(page, "results_top_1280")
    page.goto(f"{trained_studio.base}/models/compare?a={run_id}&b={run_id}")  # a model is not compared with itself
    assert "/models" in page.url and "Tick two models to compare; 1 is ticked." in page.inner_text("main")
    page.context.close()


def test_an_empty_dataset_says_what_is_missing_instead_of_a_train_form(trained_studio, browser, shoot):
    page = trained_studio.page(browser)
    new_dataset(page, trained_studio.base, "Still empty")
    button = page.locator("[data-train-missing]")
    assert button.inner_text() == "Train a model: upload images first"
    button.click()
    page.wait_for_selector(".not-ready")
    assert page.locator("#run-form").count() == 0
    assert "This dataset has no images yet." in page.inner_text(".not-ready")
    shoot(page, "train_not_ready_1280")
    page.click(".not-ready a:has-text('Upload images')")
    page.wait_for_url(re.compile(r"/datasets/\d+#upload$"))
    page.context.close()


def _file_input_hidden_but_focusable(page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box["width"] <= 1 and box["height"] <= 1  # no native "Choose Files" button in the zone
    page.focus(selector)
    assert page.evaluate(f"document.activeElement === document.querySelector('{selector}')")


def test_upload_zone_says_why_nothing_happens_and_resets_after_an_upload(trained_studio, browser, shoot):
    page = trained_studio.page(browser)
    new_dataset(page, trained_studio.base, "Upload zone")
    _file_input_hidden_but_focusable(page, "input[name=files]")
    page.click("[data-upload-button]")
    assert "Choose images or a .zip first" in page.inner_text("[data-upload-results]")
    page.set_input_files("input[name=files]", [{"name": "one.png", "mimeType": "image/png",
                                                "buffer": colour_png((10, 200, 10), 1)}])
    assert page.inner_text("[data-drop] strong") == "1 file chosen"
    page.click("[data-upload-button]")
    page.wait_for_selector("[data-upload-results] .ds-upload-status:text('Done')")
    assert page.inner_text("[data-drop] strong") == "Drop more images or a .zip here"
    assert page.inner_text("[data-drop-hint]") == "or click to choose files"
    # the header's button now asks for classes, not images
    page.wait_for_selector("#train-button:text('Train a model: add classes first')")
    shoot(page, "upload_zone_after_1280")
    page.context.close()


def test_try_it_shows_a_placeholder_for_a_refused_file_and_no_choice_for_two_classes(trained_studio, browser, shoot):
    page = trained_studio.page(browser)
    page.goto(f"{trained_studio.base}/models/{trained_studio.run_id}/try")
    assert page.locator("#try-topk").count() == 0  # two classes: nothing to choose
    assert page.inner_text("nav.nav a[aria-current=page]") == "Models"  # Try it is a model's page, not "API"
    _file_input_hidden_but_focusable(page, "#try-files")
    page.set_input_files("#try-files", [
        {"name": "red.png", "mimeType": "image/png", "buffer": colour_png((210, 40, 40), 77)},
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"},
    ])
    page.wait_for_selector("#try-results .result .error")
    page.wait_for_selector("#try-results .verdict")
    assert page.locator("#try-results .thumb-missing").count() == 1
    assert page.evaluate("[...document.querySelectorAll('#try-results img')].every(i => i.naturalWidth > 0)")
    assert page.locator("#try-results .bar-row").count() == 2  # both classes' bars
    shoot(page, "try_refused_1280")
    page.context.close()


def test_keyboard_users_skip_to_the_images_and_see_where_the_focus_is(trained_studio, browser, shoot):
    page = trained_studio.page(browser)
    page.goto(f"{trained_studio.base}/datasets/{trained_studio.dataset_id}/label")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the images"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("!!document.activeElement.closest('[data-tile]')")  # three key presses, not 23

    page.goto(f"{trained_studio.base}/datasets/{trained_studio.dataset_id}/train")
    page.focus("input[name=mode][value=fine_tune]")
    page.keyboard.press("ArrowLeft")  # keyboard focus: the card shows a clear ring
    ring = page.evaluate("(() => { const s = getComputedStyle(document.activeElement.closest('.choice'));"
                         " return [s.outlineStyle, s.outlineWidth]; })()")
    assert ring == ["solid", "3px"], ring
    shoot(page, "mode_focus_ring_1280")

    page.goto(f"{trained_studio.base}/models/{trained_studio.run_id}")
    page.click("table.confusion td a >> nth=0")
    page.wait_for_selector("#cell-images h3")
    # the panel was scrolled into view: its caption is below the sticky header, not under it
    assert page.evaluate("document.querySelector('#cell-images').getBoundingClientRect().top"
                         " >= document.querySelector('.topbar').getBoundingClientRect().bottom")
    assert page.evaluate("window.scrollY") > 0
    page.context.close()


def test_a_viewer_is_told_precisely_whom_to_ask(trained_studio, browser):
    from tests.e2e.test_accounts_e2e import register

    owner = trained_studio.page(browser)
    viewer = browser.new_page()
    register(viewer, trained_studio.base, "vic")
    owner.goto(f"{trained_studio.base}/datasets/{trained_studio.dataset_id}/sharing")
    owner.fill("#share-username", "vic")
    owner.select_option("#share-role", "viewer")
    owner.click("button:has-text('Share')")
    owner.wait_for_selector("text=vic")
    response = viewer.goto(f"{trained_studio.base}/datasets/{trained_studio.dataset_id}/sharing")
    assert response.status == 403
    message = viewer.inner_text(".error-message")
    assert "Only the dataset's owner, studio, can do this" in message and "owner access" not in message
    owner.context.close()
    viewer.close()
