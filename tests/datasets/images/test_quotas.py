"""Quotas on images and storage: uploads and imports beyond the owner's quota are refused (or stopped)
with a message naming the quota, and leave no files or rows behind; deletes give the room back."""
from __future__ import annotations

import io
import random

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from app.extensions import db
from app.models import Image, Import, User
from tests.conftest import run_jobs, stored_files, stored_keys
from tests.datasets.conftest import make_zip, png, upload


def _originals() -> set[str]:
    return {key.rsplit("/", 1)[-1] for key in stored_keys("images")}


def _staged() -> list:
    return [name for name in stored_files() if name.startswith("uploads/")]


def _counters(user_id: int) -> tuple[int, int]:
    db.session.expire_all()
    user = db.session.get(User, user_id)
    return user.image_count, user.image_bytes


def _rows(dataset_id: int) -> int:
    return db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset_id))


def _set(user_id: int, **quotas) -> None:
    user = db.session.get(User, user_id)
    for name, value in quotas.items():
        setattr(user, f"quota_{name}", value)
    db.session.commit()


def noisy_png(seed: int, side: int = 400) -> bytes:
    """A PNG that does not compress (~470 KB at 400 px)."""
    rnd = random.Random(seed)
    img = PILImage.frombytes("RGB", (side, side), bytes(rnd.getrandbits(8) for _ in range(side * side * 3)))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_uploads_count_against_the_owner_and_stop_at_the_image_quota(logged_in, dataset):
    _set(logged_in.user.id, images=2)
    response = upload(logged_in, dataset.id, [("a.png", png(1)), ("b.png", png(2)), ("c.png", png(3))])
    assert response.status_code == 200
    results = response.json["results"]
    assert [r["status"] for r in results] == ["added", "added", "error"]
    assert "quota of 2 images" in results[2]["message"]
    assert _rows(dataset.id) == 2 and len(_originals()) == 2
    assert _counters(logged_in.user.id) == (2, len(png(1)) + len(png(2)))

    # full: the next request is refused as a whole, nothing is stored or staged
    refused = upload(logged_in, dataset.id, [("d.png", png(4)), ("e.zip", make_zip({"x/f.png": png(5)}))])
    assert refused.status_code == 403
    assert refused.json["code"] == "quota_exceeded" and "quota of 2 images" in refused.json["error"]
    assert _rows(dataset.id) == 2 and len(_originals()) == 2 and _staged() == []
    assert db.session.scalar(select(func.count(Import.id))) == 0


def test_the_storage_quota_refuses_a_file_that_does_not_fit(logged_in, dataset):
    _set(logged_in.user.id, storage_mb=1)
    big = [noisy_png(i) for i in range(3)]
    assert all(300_000 < len(b) < 600_000 for b in big)
    results = upload(logged_in, dataset.id, [(f"{i}.png", b) for i, b in enumerate(big)]).json["results"]
    assert [r["status"] for r in results] == ["added", "added", "error"]
    assert "storage quota of 1.0 MB is full" in results[2]["message"]
    assert _rows(dataset.id) == 2 and len(_originals()) == 2
    assert _counters(logged_in.user.id)[1] == len(big[0]) + len(big[1])


def test_an_import_that_reaches_the_quota_stops_and_keeps_what_fit(app, logged_in, dataset):
    app.config["IMPORT_BATCH_SIZE"] = 2  # the quota is met across several commits
    _set(logged_in.user.id, images=3)
    archive = make_zip({f"cats/{i}.png": png(i) for i in range(6)})
    response = upload(logged_in, dataset.id, [("cats.zip", archive)])
    assert response.status_code == 202
    run_jobs(app)
    status = logged_in.get(response.json["import"]["status_url"]).json
    assert (status["status"], status["added"], status["processed"], status["total"]) == ("failed", 3, 3, 6)
    assert "quota of 3 images is reached" in status["message"]
    assert "3 images added before were kept; the other 3 files were not imported" in status["message"]
    assert _rows(dataset.id) == 3 and len(_originals()) == 3 and _staged() == []
    assert _counters(logged_in.user.id)[0] == 3


def test_an_import_whose_room_is_taken_meanwhile_keeps_only_what_fits(app, logged_in, dataset):
    """Another upload takes the room while the import holds decoded images: the flush's reservation
    (a conditional update) keeps the first that still fit and removes the others' files."""
    from app.blueprints.datasets.images import importer as importer_module
    from app.blueprints.datasets.images.uploads import add_image_bytes

    _set(logged_in.user.id, images=4)
    archive = make_zip({f"cats/{i}.png": png(i) for i in range(3)})
    response = upload(logged_in, dataset.id, [("cats.zip", archive)])
    original_flush = importer_module.Importer.flush
    state = {"done": False}

    def flush_after_a_concurrent_upload(self):
        if self.rows and not state["done"]:
            state["done"] = True
            for n in (10, 11):  # 2 + the 3 waiting rows > 4
                assert add_image_bytes(dataset.id, logged_in.user.id, f"{n}.png", png(n)).status == "added"
        return original_flush(self)

    importer_module.Importer.flush = flush_after_a_concurrent_upload
    try:
        app.config["IMPORT_BATCH_SIZE"] = 3
        run_jobs(app)
    finally:
        importer_module.Importer.flush = original_flush
    status = logged_in.get(response.json["import"]["status_url"]).json
    assert (status["status"], status["added"]) == ("failed", 2)
    assert _rows(dataset.id) == 4 and len(_originals()) == 4
    assert _counters(logged_in.user.id)[0] == 4


def test_deleting_images_and_datasets_gives_the_room_back(app, logged_in, dataset):
    from app.blueprints.datasets.deletion import delete_dataset
    from app.blueprints.datasets.services import create_dataset

    upload(logged_in, dataset.id, [("a.png", png(1)), ("b.png", png(2))])
    ids = list(db.session.scalars(select(Image.id).where(Image.dataset_id == dataset.id)))
    logged_in.post(f"/datasets/{dataset.id}/images/delete", data={"image_ids": [str(ids[0])]})
    assert _counters(logged_in.user.id) == (1, len(png(2)))

    other = create_dataset(logged_in.user.id, "Second")
    upload(logged_in, other.id, [("c.png", png(3)), ("d.png", png(4))])
    assert _counters(logged_in.user.id)[0] == 3
    delete_dataset(db.session.get(type(other), other.id))
    assert _counters(logged_in.user.id) == (1, len(png(2)))  # at once, not when the job has run
    run_jobs(app)
    assert _counters(logged_in.user.id) == (1, len(png(2)))  # and not twice


def test_a_restored_dataset_takes_its_room_again_or_stays_deleted(app, logged_in, dataset):
    from app.blueprints.datasets.deletion import delete_dataset, restore_dataset
    from app.errors import QuotaExceeded
    from app.models import Dataset

    app.config["DATASET_UNDO_SECONDS"] = 120
    upload(logged_in, dataset.id, [("a.png", png(1)), ("b.png", png(2))])
    user_id, dataset_id = logged_in.user.id, dataset.id
    delete_dataset(db.session.get(Dataset, dataset_id))
    assert _counters(user_id) == (0, 0)
    restore_dataset(user_id, dataset_id)
    assert _counters(user_id) == (2, len(png(1)) + len(png(2)))
    delete_dataset(db.session.get(Dataset, dataset_id))
    _set(user_id, images=1)
    with pytest.raises(QuotaExceeded, match="stays deleted"):
        restore_dataset(user_id, dataset_id)
    db.session.expire_all()
    assert db.session.get(Dataset, dataset_id).deleting is True and _counters(user_id) == (0, 0)


def test_images_an_editor_adds_count_against_the_owner(app, logged_in, dataset, make_user):
    from app.blueprints.datasets.sharing import share_dataset
    from tests.conftest import login

    editor = make_user("erin")
    share_dataset(dataset, "erin", "editor")
    client = app.test_client()
    login(client, "erin")
    assert upload(client, dataset.id, [("a.png", png(1))]).json["results"][0]["status"] == "added"
    assert _counters(logged_in.user.id)[0] == 1 and _counters(editor.id)[0] == 0


def test_recount_repairs_the_counters(logged_in, dataset):
    from app.quotas import recount_images

    upload(logged_in, dataset.id, [("a.png", png(1))])
    db.session.execute(User.__table__.update().values(image_count=99, image_bytes=5))
    db.session.commit()
    recount_images()
    assert _counters(logged_in.user.id) == (1, len(png(1)))


def test_the_account_page_shows_usage_against_the_quota(app, logged_in, dataset):
    _set(logged_in.user.id, images=10)
    upload(logged_in, dataset.id, [("a.png", png(1)), ("b.png", png(2))])
    page = logged_in.get("/account").data.decode()
    section = page[page.index('id="usage"'):page.index("Change password")]
    assert "<td>Images</td>" in section and "<td>2</td>" in section and "10 <meter" in section
    assert 'value="20"' in section  # 2 of 10 images: 20 %
    assert "<td>Datasets</td>" in section and "100 <meter" in section  # the site default (QUOTA_DATASETS)
