"""Uploading many loose images from the browser: sent in several requests with one overall progress bar."""
from __future__ import annotations

import io
import re

from PIL import Image

from tests.e2e.test_accounts_e2e import register


def small_png(i: int) -> bytes:
    img = Image.new("RGB", (24, 24), (i % 256, (7 * i) % 256, 90))
    img.putpixel((i % 24, 0), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_many_images_are_sent_in_batches(live_server, browser, shoot):
    base = live_server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    register(page, base, "batcher")
    page.goto(base + "/datasets/new")
    page.fill("input[name=name]", "Many")
    page.click("button:has-text('Create dataset')")
    page.wait_for_url(re.compile(r"/datasets/\d+"), timeout=10_000)
    page.eval_on_selector("[data-upload]", "form => { form.dataset.batchFiles = '20'; }")
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("/upload") else None)
    files = [{"name": f"img{i:03}.png", "mimeType": "image/png", "buffer": small_png(i)} for i in range(149)]
    files.append({"name": "broken.png", "mimeType": "image/png", "buffer": b"not a png"})
    page.set_input_files("input[name=files]", files)
    page.click("[data-upload-button]")
    page.wait_for_selector("[data-upload-results] .ds-upload-status:text('Done')", timeout=120_000)
    status = page.inner_text("[data-upload-results]")
    assert "Done: 150 files sent. 149 images added." in status, status
    assert "149 images added · 1 file could not be used" in status and "broken.png" in status
    assert page.get_attribute("[data-upload-results] [role=progressbar]", "aria-valuenow") == "100"
    assert len(posts) == 8  # 150 files, 20 per request
    page.wait_for_selector("#summary .big-number:text('149')", timeout=10_000)
    shoot(page, "upload_batches_1280")

    # every file refused (or already there): said plainly, not "0 images added"
    for files, said in (([{"name": "notes.png", "mimeType": "image/png", "buffer": b"not a png"}],
                         "Nothing was added: 1 file could not be used (why: below)."),
                        ([{"name": "again.png", "mimeType": "image/png", "buffer": small_png(3)}],
                         "Nothing was added: 1 file is already in this dataset.")):
        page.set_input_files("input[name=files]", files)
        page.click("[data-upload-button]")
        page.wait_for_selector(f"[data-upload-results] .ds-upload-status:has-text('{said}')", timeout=30_000)
        assert "0 images added." not in page.inner_text("[data-upload-results] .ds-upload-status")
    page.close()
