"""Merge two classes in Chromium: the question before merging names the classes chosen and the images
that move (not a bare "Merge these two classes?"); No changes nothing, Yes merges, Undo brings it back."""
from __future__ import annotations

from tests.e2e.conftest import new_dataset, studio_zip
from tests.e2e.test_accounts_e2e import register


def test_the_merge_question_names_the_classes_and_undo_brings_it_back(live_server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 844}, color_scheme="dark")
    register(page, live_server, "merger")
    dataset_id = new_dataset(page, live_server, "Merge")
    page.set_input_files("input[name=files]", str(studio_zip(tmp_path / "colours.zip", per_class=3, loose=0)))
    page.click("[data-upload-button]")
    page.wait_for_selector("#imports [data-import-status=finished]", timeout=60_000)
    page.goto(f"{live_server}/datasets/{dataset_id}/classes")
    page.click("summary:has-text('Merge two classes')")
    first, second = (s.split(" (")[0] for s in page.locator("select[name=source] option").all_inner_texts())
    assert {first, second} == {"red", "blue"}  # the form proposes the first class into the second
    questions = []

    def answer(dialog, accept):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer(d, False))
    page.click(".ds-merge-form button[type=submit]")
    page.wait_for_timeout(500)
    assert questions == [f"Move the 3 images of “{first}” into “{second}”, then delete the class “{first}”?"]
    assert page.locator(".ds-classrow").count() == 2  # No: nothing merged
    page.once("dialog", lambda d: answer(d, True))
    page.click(".ds-merge-form button[type=submit]")
    page.locator(".ds-classrow").nth(1).wait_for(state="detached")  # one class left
    assert page.locator(".ds-classrow").count() == 1
    page.click("button:has-text('Undo')")
    page.locator(".ds-classrow").nth(1).wait_for()
    assert page.locator(".ds-classrow").count() == 2
    page.context.close()
