"""Zip import: folder-per-class layout, nested folders, unsafe entries, zip bombs."""
from __future__ import annotations

import io
import zipfile

from sqlalchemy import func, select

from app.extensions import db
from app.models import Image, Label
from app.storage import get_storage
from tests.datasets.conftest import make_zip, png, upload


def _labels_by_filename(dataset_id: int) -> dict[str, str | None]:
    rows = db.session.execute(select(Image.filename, Label.name).outerjoin(Label, Label.id == Image.label_id)
                              .where(Image.dataset_id == dataset_id)).all()
    return dict(rows)


def test_zip_with_nested_folders_and_root_files(logged_in, dataset):
    archive = make_zip({
        "cats/a.png": png(1), "cats/indoor/b.png": png(2), "Dogs/c.png": png(3), "root.png": png(4),
        "__MACOSX/cats/._a.png": b"junk", "cats/.DS_Store": b"junk", "readme.txt": b"not an image",
    })
    response = upload(logged_in, dataset.id, [("pets.zip", archive)])
    results = {r["filename"]: r for r in response.json["results"]}
    assert results["cats/indoor/b.png"]["label"] == "cats"
    assert results["readme.txt"]["status"] == "error"
    assert not any("MACOSX" in name or "DS_Store" in name for name in results)
    assert _labels_by_filename(dataset.id) == {"a.png": "cats", "b.png": "cats", "c.png": "Dogs", "root.png": None}
    sources = set(db.session.scalars(select(Image.label_source).where(Image.label_id.is_not(None))))
    assert sources == {"import"}


def test_zip_reuses_existing_class_ignoring_case_and_strips_wrapper_folder(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    add_class(dataset.id, "Cats")
    archive = make_zip({"export/cats/a.png": png(1), "export/bees/b.png": png(2)})
    upload(logged_in, dataset.id, [("export.zip", archive)])
    assert _labels_by_filename(dataset.id) == {"a.png": "Cats", "b.png": "bees"}
    assert db.session.scalar(select(func.count(Label.id))) == 2


def test_unsafe_entries_are_skipped_and_nothing_written_outside(app, logged_in, dataset, tmp_path):
    archive = make_zip({"../evil.png": png(1), "cats/../../evil2.png": png(2), "/abs.png": png(3),
                        "C:\\windows\\x.png": png(4), "ok/fine.png": png(5)})
    results = upload(logged_in, dataset.id, [("bad.zip", archive)]).json["results"]
    skipped = [r for r in results if r["status"] == "error"]
    assert len(skipped) == 4 and all("unsafe path" in r["message"] for r in skipped)
    assert _labels_by_filename(dataset.id) == {"fine.png": "ok"}
    storage_root = get_storage().root
    outside = [p for p in tmp_path.rglob("*.png") if storage_root not in p.parents]
    assert outside == []


def test_zip_with_too_many_entries_is_rejected_whole(app, logged_in, dataset):
    app.config["MAX_ZIP_FILES"] = 3
    archive = make_zip({f"cats/{i}.png": png(i) for i in range(4)})
    [result] = upload(logged_in, dataset.id, [("many.zip", archive)]).json["results"]
    assert result["status"] == "error" and "the limit is 3" in result["message"]
    assert "Nothing was imported" in result["message"]
    assert db.session.scalar(select(func.count(Image.id))) == 0
    assert db.session.scalar(select(func.count(Label.id))) == 0


def test_zip_bomb_by_declared_size_is_rejected(app, logged_in, dataset):
    app.config["MAX_ZIP_UNCOMPRESSED"] = 50_000
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cats/a.png", png(1))
        zf.writestr("cats/bomb.png", b"\0" * 1_000_000)  # compresses to about 1 KB
    assert len(buf.getvalue()) < 5_000
    [result] = upload(logged_in, dataset.id, [("bomb.zip", buf.getvalue())]).json["results"]
    assert result["status"] == "error" and "over the limit" in result["message"]
    assert db.session.scalar(select(func.count(Image.id))) == 0


def test_zip_bomb_counted_while_reading_rolls_everything_back(app, logged_in, dataset):
    """Declared sizes can lie; the bytes actually read are counted too, and nothing stays behind."""
    from app.blueprints.datasets.images import imports

    archive = make_zip({"cats/a.png": png(1), "cats/b.png": png(2), "cats/c.png": png(3)})
    sizes = [i.file_size for i in zipfile.ZipFile(io.BytesIO(archive)).infolist()]
    app.config["MAX_ZIP_UNCOMPRESSED"] = sum(sizes) - 1  # the declared check alone would refuse...
    original = imports._plan

    def lying_plan(zf):  # ...so pretend the declared sizes are small, as a crafted zip would
        app.config["MAX_ZIP_UNCOMPRESSED"] = 10**9
        try:
            return original(zf)
        finally:
            app.config["MAX_ZIP_UNCOMPRESSED"] = sum(sizes) - 1

    imports._plan = lying_plan
    try:
        [result] = upload(logged_in, dataset.id, [("sneaky.zip", archive)]).json["results"]
    finally:
        imports._plan = original
    assert result["status"] == "error" and "more bytes than allowed" in result["message"]
    assert db.session.scalar(select(func.count(Image.id))) == 0
    assert db.session.scalar(select(func.count(Label.id))) == 0
    assert not [p for p in get_storage().root.rglob("*") if p.is_file()]


def test_damaged_zip_is_a_clear_error(logged_in, dataset):
    [result] = upload(logged_in, dataset.id, [("broken.zip", b"PK\x03\x04 not really")]).json["results"]
    assert result == {"filename": "broken.zip", "status": "error", "label": None, "image_id": None,
                      "message": "This .zip file is damaged or not a zip file."}
