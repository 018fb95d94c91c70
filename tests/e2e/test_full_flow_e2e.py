"""The product as a person uses it, in Chromium against gunicorn + a real worker:
register → dataset → zip upload → keyboard labeling → quick train → results → browser predict →
ONNX download → sharing (a viewer sees it, a stranger gets 404)."""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import onnxruntime
from PIL import Image

from tests.e2e.test_accounts_e2e import register

HYMENOPTERA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hymenoptera" / "train"
PER_CLASS = 9


def photo_bytes(cls: str, i: int) -> bytes:
    """A real photo from ../shared/data/hymenoptera when present, else a generated image."""
    if HYMENOPTERA.is_dir():
        return sorted((HYMENOPTERA / cls).glob("*.jpg"))[i].read_bytes()
    color = (200, 60, 30) if cls == "ants" else (240, 200, 40)
    buf = io.BytesIO()
    Image.new("RGB", (96, 96), tuple(c - 3 * i for c in color)).save(buf, "JPEG")
    return buf.getvalue()


def make_zip(path: Path) -> Path:
    """ants/ and bees/ folders, plus one photo of each at the root (unlabeled, to label by keyboard)."""
    with zipfile.ZipFile(path, "w") as zf:
        for cls in ("ants", "bees"):
            for i in range(PER_CLASS):
                zf.writestr(f"{cls}/{cls}_{i}.jpg", photo_bytes(cls, i))
            zf.writestr(f"loose_{cls}.jpg", photo_bytes(cls, PER_CLASS))
    return path


def test_full_flow(live_server, browser, shoot, tmp_path):
    base = live_server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    register(page, base, "alice")

    page.goto(base + "/datasets/new")
    page.fill("input[name=name]", "Ants and bees")
    shoot(page, "new_dataset_1280")
    page.click("button:has-text('Create dataset')")
    page.wait_for_url(re.compile(r"/datasets/\d+"), timeout=10_000)
    dataset_id = int(re.search(r"/datasets/(\d+)", page.url).group(1))

    page.set_input_files("input[name=files]", str(make_zip(tmp_path / "photos.zip")))
    page.click("[data-upload-button]")
    page.wait_for_selector("#imports [data-import-status=finished]", timeout=60_000)  # a background import
    assert "20 images added" in page.inner_text("#imports")
    page.wait_for_selector("#summary .big-number:text('20')", timeout=10_000)  # the counts refreshed
    shoot(page, "dataset_1280")

    page.goto(f"{base}/datasets/{dataset_id}/label?filter=unlabeled")
    tiles = page.locator("[data-tile]")
    assert tiles.count() == 2
    shoot(page, "label_1280")
    for key in ("1", "2"):  # class 1 = ants, class 2 = bees (zip folder order)
        tiles.first.click()
        with page.expect_response(lambda r: "/images/label" in r.url):
            page.keyboard.press(key)
        page.wait_for_timeout(300)
    page.goto(f"{base}/datasets/{dataset_id}/label?filter=unlabeled")
    assert page.locator("[data-tile]").count() == 0

    page.goto(f"{base}/datasets/{dataset_id}/train")
    page.fill("input[name=name]", "first try")
    shoot(page, "train_form_1280")
    page.click("button:has-text('Start training')")
    page.wait_for_url(re.compile(r"/models/\d+$"), timeout=30_000)
    run_id = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector("[role=progressbar][aria-valuenow='100'], table.confusion", timeout=300_000)
    page.wait_for_selector("table.confusion", timeout=120_000)
    assert page.is_visible("table.confusion")
    assert page.title() == "✓ first try · Studio"  # the tab said the progress while it trained, then this
    shoot(page, "results_1280")

    page.click("a:has-text('Try it on your images')")
    page.wait_for_url(f"{base}/models/{run_id}/try")
    page.set_input_files("#try-files", [
        {"name": "ant.jpg", "mimeType": "image/jpeg", "buffer": photo_bytes("ants", 12)},
        {"name": "bee.jpg", "mimeType": "image/jpeg", "buffer": photo_bytes("bees", 12)},
    ])
    page.locator("#try-results .verdict").nth(1).wait_for(timeout=60_000)
    verdicts = page.locator("#try-results .verdict").all_inner_texts()
    assert all(re.search(r"ants|bees", v) for v in verdicts), verdicts
    shoot(page, "try_1280")

    page.goto(f"{base}/models/{run_id}")
    with page.expect_download() as download:
        page.click("a:has-text('ONNX')")
    onnx_path = tmp_path / "model.onnx"
    download.value.save_as(onnx_path)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1] == 3

    for name, path in (("suggestions_1280", f"/datasets/{dataset_id}/suggestions"),
                       ("health_1280", f"/datasets/{dataset_id}/health")):
        assert page.goto(base + path).status == 200
        shoot(page, name)

    viewer = browser.new_page()
    register(viewer, base, "bob")
    stranger = browser.new_page()
    register(stranger, base, "carol")
    page.goto(f"{base}/datasets/{dataset_id}/sharing")
    page.fill("#share-username", "bob")
    page.select_option("#share-role", "viewer")
    page.click("button:has-text('Share')")
    page.wait_for_selector("text=bob")
    assert viewer.goto(f"{base}/datasets/{dataset_id}").status == 200
    assert "Ants and bees" in viewer.content()
    assert viewer.goto(f"{base}/models/{run_id}").status == 200
    assert stranger.goto(f"{base}/datasets/{dataset_id}").status == 404
    assert stranger.goto(f"{base}/models/{run_id}").status == 404

    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.context.add_cookies(page.context.cookies())
    for name, path in (("dataset_390", f"/datasets/{dataset_id}"), ("label_390", f"/datasets/{dataset_id}/label"),
                       ("results_390", f"/models/{run_id}"), ("models_390", "/models")):
        phone.goto(base + path)
        shoot(phone, name)
    for p in (page, viewer, stranger, phone):
        p.close()
