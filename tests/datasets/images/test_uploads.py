"""Uploading images: good files, every kind of bad file, duplicates, thumbnails, plain form posts."""
from __future__ import annotations

import io

from PIL import Image as PILImage
from sqlalchemy import func, select

from app.extensions import db
from app.models import Image
from app.filestore import image_key, thumb_key
from app.storage import get_storage
from tests.conftest import flashes, image_bytes, stored_files
from tests.datasets.conftest import png, upload


def _count(dataset_id: int) -> int:
    return db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset_id))


def _stored_files(app) -> list:
    return stored_files()


def noisy_jpeg(size=(64, 64)) -> bytes:
    img = PILImage.effect_noise(size, 60).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_upload_stores_original_and_thumbnail(logged_in, dataset):
    data = png(1, size=(600, 300))
    response = upload(logged_in, dataset.id, [("red.png", data)])
    assert response.status_code == 200
    [result] = response.json["results"]
    assert result["status"] == "added"
    image = db.session.get(Image, result["image_id"])
    assert (image.width, image.height, image.format, image.size_bytes) == (600, 300, "PNG", len(data))
    storage = get_storage()
    assert storage.read(image_key(image.sha256)) == data  # original bytes, untouched
    with PILImage.open(io.BytesIO(storage.read(thumb_key(image.sha256)))) as thumb:
        assert thumb.format == "WEBP" and max(thumb.size) == 256
    with logged_in.get(f"/datasets/{dataset.id}/images/{image.id}/thumb") as thumb_response:
        assert thumb_response.status_code == 200 and thumb_response.mimetype == "image/webp"
    with logged_in.get(f"/datasets/{dataset.id}/images/{image.id}/file") as file_response:
        assert file_response.data == data and "private" in file_response.headers["Cache-Control"]


def test_every_supported_format_is_accepted(logged_in, dataset):
    files = [(f"x.{fmt.lower()}", image_bytes(size=(20, 20), fmt=fmt, noise=i + 1))
             for i, fmt in enumerate(["JPEG", "PNG", "WEBP", "BMP", "GIF"])]
    results = upload(logged_in, dataset.id, files).json["results"]
    assert [r["status"] for r in results] == ["added"] * 5
    assert sorted(db.session.scalars(select(Image.format))) == ["BMP", "GIF", "JPEG", "PNG", "WEBP"]


def test_exif_orientation_is_applied_to_size_and_thumbnail(logged_in, dataset):
    img = PILImage.new("RGB", (40, 20), (10, 200, 10))
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90°: the picture is really portrait
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    [result] = upload(logged_in, dataset.id, [("phone.jpg", buf.getvalue())]).json["results"]
    image = db.session.get(Image, result["image_id"])
    assert (image.width, image.height) == (20, 40)
    with PILImage.open(io.BytesIO(get_storage().read(thumb_key(image.sha256)))) as thumb:
        assert thumb.size == (20, 40)


def test_gif_uses_first_frame(logged_in, dataset):
    frames = [PILImage.new("RGB", (30, 30), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    [result] = upload(logged_in, dataset.id, [("anim.gif", buf.getvalue())]).json["results"]
    image = db.session.get(Image, result["image_id"])
    with PILImage.open(io.BytesIO(get_storage().read(thumb_key(image.sha256)))) as thumb:
        red, green, blue = thumb.convert("RGB").getpixel((15, 15))
    assert red > 200 and blue < 50


def test_each_bad_file_gets_a_clear_message_and_leaves_nothing(app, logged_in, dataset):
    app.config["MAX_IMAGE_PIXELS"] = 100 * 100
    app.config["MAX_IMAGE_BYTES"] = 4000
    cases = {
        "big.jpg": (noisy_jpeg((96, 96)), "too large: more than that (the limit for one image is 4 KB)"),
        "notes.txt": (b"just some text, not an image", "not an image"),
        "half.jpg": (noisy_jpeg()[:800], "damaged or incomplete"),
        "empty.png": (b"", "empty (0 bytes)"),
        "huge.png": (png(1, size=(101, 100)), "too large"),
    }
    response = upload(logged_in, dataset.id, [(name, data) for name, (data, _) in cases.items()])
    results = {r["filename"]: r for r in response.json["results"]}
    for name, (_, expected) in cases.items():
        assert results[name]["status"] == "error"
        assert expected in results[name]["message"], results[name]
    assert _count(dataset.id) == 0
    assert _stored_files(app) == []


def test_pillow_bomb_limit_is_an_error_not_a_warning(logged_in, dataset, app):
    """An image above Pillow's own bomb threshold must be refused cleanly (pytest makes warnings errors)."""
    app.config["MAX_IMAGE_PIXELS"] = 10**12
    img = PILImage.new("1", (12000, 16000))  # 192 Mpx: above Pillow's 2x limit, tiny as a 1-bit PNG
    buf = io.BytesIO()
    img.save(buf, "PNG")
    [result] = upload(logged_in, dataset.id, [("bomb.png", buf.getvalue())]).json["results"]
    assert result["status"] == "error" and "too large" in result["message"]


def test_request_over_the_upload_limit_is_413_with_message(app, logged_in, dataset):
    """The upload route has its own limit (MAX_UPLOAD_BYTES, for zips), set before the CSRF check reads the
    body; other routes keep MAX_CONTENT_LENGTH."""
    app.config["MAX_CONTENT_LENGTH"] = 1000
    assert upload(logged_in, dataset.id, [("small.jpg", noisy_jpeg((16, 16)))]).status_code == 200  # over 1000
    assert logged_in.post("/datasets/new", data={"name": "x" * 1200}).status_code == 413  # other routes
    app.config["MAX_UPLOAD_BYTES"] = 2000
    response = upload(logged_in, dataset.id, [("big.jpg", noisy_jpeg((128, 128)))])
    assert response.status_code == 413
    assert "too large" in response.json["error"]
    page = upload(logged_in, dataset.id, [("big.jpg", noisy_jpeg((128, 128)))], json=False)
    assert page.status_code == 413 and b"The upload is too large" in page.data
    assert _count(dataset.id) == 1


def test_bad_file_in_batch_does_not_stop_good_ones(logged_in, dataset):
    files = [("a.png", png(1)), ("broken.png", b"\x89PNG\r\n\x1a\n broken"), ("b.png", png(2))]
    results = upload(logged_in, dataset.id, files).json["results"]
    assert [r["status"] for r in results] == ["added", "error", "added"]
    assert _count(dataset.id) == 2


def test_duplicate_upload_is_stored_once_and_reported(app, logged_in, dataset):
    data = png(7)
    first = upload(logged_in, dataset.id, [("a.png", data), ("copy.png", data)]).json
    assert [r["status"] for r in first["results"]] == ["added", "duplicate"]
    assert "1 duplicate skipped" in first["summary"]
    again = upload(logged_in, dataset.id, [("again.png", data)]).json["results"]
    assert again[0]["status"] == "duplicate" and "Already in this dataset" in again[0]["message"]
    assert _count(dataset.id) == 1
    assert len(_stored_files(app)) == 2  # one original + one thumbnail


def test_plain_form_post_flashes_a_summary(logged_in, dataset):
    response = upload(logged_in, dataset.id, [("a.png", png(1)), ("bad.txt", b"nope")], json=False,
                      follow_redirects=True)
    messages = flashes(response.data)
    assert "1 image added, 1 file could not be used." in messages
    assert any(m.startswith("bad.txt: This is not an image") for m in messages)


def test_failed_commit_removes_new_files(app, logged_in, dataset, monkeypatch):
    """Files are written before the commit; when the commit fails they must not stay behind."""
    from app.blueprints.datasets.images.uploads import add_image_bytes

    def boom():
        raise RuntimeError("database went away")

    monkeypatch.setattr(db.session, "commit", boom)
    try:
        add_image_bytes(dataset.id, logged_in.user.id, "a.png", png(3))
    except RuntimeError:
        pass
    monkeypatch.undo()
    assert _count(dataset.id) == 0
    assert _stored_files(app) == []


def test_each_files_result_is_said_in_the_readers_language(logged_in, dataset):
    data = {"files": [(io.BytesIO(png(1)), "a.png"), (io.BytesIO(b"nope"), "bad.txt")]}
    page = logged_in.post(f"/datasets/{dataset.id}/upload", data=data, content_type="multipart/form-data",
                          headers={"HX-Request": "true", "Accept-Language": "pt-BR"}).get_data(as_text=True)
    assert "1 imagem adicionada" in page and "Esta não é uma imagem que conseguimos ler" in page
    assert "Added." not in page and "Adicionada." in page
