"""Zip import: folder-per-class layout, nested folders, unsafe entries, limits, zip bombs, duplicates
skipped before decoding, file names that could break headers. Imports run as jobs in a real burst worker."""
from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
import zlib

from PIL import Image as PILImage
from sqlalchemy import func, select

from app.extensions import db
from app.models import Image, Import, Label
from app.filestore import import_prefix
from app.storage import get_storage
from tests.conftest import run_jobs, stored_files, stored_keys
from tests.datasets.conftest import import_zip, make_zip, png, upload


def _labels_by_filename(dataset_id: int) -> dict[str, str | None]:
    rows = db.session.execute(select(Image.filename, Label.name).outerjoin(Label, Label.id == Image.label_id)
                              .where(Image.dataset_id == dataset_id)).all()
    return dict(rows)


def _count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def _stored_files() -> list:
    return stored_files()


def test_zip_with_nested_folders_and_root_files(logged_in, dataset):
    archive = make_zip({
        "cats/a.png": png(1), "cats/indoor/b.png": png(2), "Dogs/c.png": png(3), "root.png": png(4),
        "__MACOSX/cats/._a.png": b"junk", "cats/.DS_Store": b"junk", "readme.txt": b"not an image",
    })
    status = import_zip(logged_in, dataset.id, archive)
    assert (status["status"], status["total"], status["processed"], status["added"]) == ("finished", 5, 5, 4)
    assert [e["filename"] for e in status["errors"]] == ["readme.txt"]
    assert "not an image" in status["errors"][0]["message"]
    assert _labels_by_filename(dataset.id) == {"a.png": "cats", "b.png": "cats", "c.png": "Dogs", "root.png": None}
    sources = set(db.session.scalars(select(Image.label_source).where(Image.label_id.is_not(None))))
    assert sources == {"import"}


def test_zip_reuses_existing_class_ignoring_case_and_strips_wrapper_folder(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    add_class(dataset.id, "Cats")
    import_zip(logged_in, dataset.id, make_zip({"export/cats/a.png": png(1), "export/bees/b.png": png(2)}))
    assert _labels_by_filename(dataset.id) == {"a.png": "Cats", "b.png": "bees"}
    assert _count(Label) == 2


def test_unsafe_entries_are_skipped_and_nothing_written_outside(app, logged_in, dataset, tmp_path):
    archive = make_zip({"../evil.png": png(1), "cats/../../evil2.png": png(2), "/abs.png": png(3),
                        "C:\\windows\\x.png": png(4), "ok/fine.png": png(5)})
    status = import_zip(logged_in, dataset.id, archive)
    assert status["error_count"] == 4 and all("unsafe path" in e["message"] for e in status["errors"])
    assert _labels_by_filename(dataset.id) == {"fine.png": "ok"}
    storage_root = get_storage().local_root
    outside = [p for p in tmp_path.rglob("*.png") if storage_root not in p.parents]
    assert outside == []


def test_file_limit_counts_files_not_folder_entries(app, logged_in, dataset):
    app.config["MAX_ZIP_FILES"] = 4
    files = {f"cats/{i}.png": png(i) for i in range(2)} | {f"dogs/{i}.png": png(10 + i) for i in range(2)}
    archive = make_zip(files, folders=True)
    assert len(zipfile.ZipFile(io.BytesIO(archive)).infolist()) == 6  # 4 files + 2 folder entries
    status = import_zip(logged_in, dataset.id, archive)
    assert (status["status"], status["added"]) == ("finished", 4)

    over = make_zip(files | {"dogs/9.png": png(99)}, folders=True)
    response = upload(logged_in, dataset.id, [("many.zip", over)])
    assert response.status_code == 200 and "import" not in response.json
    [result] = response.json["results"]
    assert result["status"] == "error" and "5 files; the limit is 4" in result["message"]


def test_zip_refused_as_a_whole_leaves_nothing(app, logged_in, dataset):
    app.config["MAX_ZIP_UNCOMPRESSED"] = 50_000
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cats/a.png", png(1))
        zf.writestr("cats/bomb.png", b"\0" * 1_000_000)  # compresses to about 1 KB
    assert len(buf.getvalue()) < 5_000
    [result] = upload(logged_in, dataset.id, [("bomb.zip", buf.getvalue())]).json["results"]
    assert result["status"] == "error" and "over the limit" in result["message"]
    [damaged] = upload(logged_in, dataset.id, [("broken.zip", b"PK\x03\x04 not really")]).json["results"]
    assert damaged == {"filename": "broken.zip", "status": "error", "label": None, "image_id": None,
                       "message": "This .zip file is damaged or not a zip file."}
    assert (_count(Image), _count(Label), _count(Import)) == (0, 0, 0)
    assert _stored_files() == []  # the staged uploads are gone too


def test_bytes_over_the_budget_stop_the_import_and_keep_earlier_batches(app, logged_in, dataset, monkeypatch):
    """Declared sizes can lie; the bytes actually read are counted too. What was committed stays."""
    from app.blueprints.datasets.images import importer

    app.config.update(IMPORT_BATCH_SIZE=2, IMPORT_THREADS=1)  # at most 2 entries in flight
    entries = {f"cats/{i}.png": png(i) for i in range(6)}
    archive = make_zip(entries)
    response = upload(logged_in, dataset.id, [("sneaky.zip", archive)])
    assert response.status_code == 202
    real_plan = importer.plan_zip
    monkeypatch.setattr(importer, "plan_zip", lambda zf, files, _: real_plan(zf, files, 10**9))  # lies
    app.config["MAX_ZIP_UNCOMPRESSED"] = sum(len(v) for v in entries.values()) - 1  # the last entry is over
    run_jobs(app)
    status = logged_in.get(response.json["import"]["status_url"]).json
    assert status["status"] == "failed" and "more bytes than allowed" in status["message"]
    added = status["added"]  # batches of 2 were committed before the entry over the budget was read
    assert 2 <= added <= 5 and added == _count(Image) and status["processed"] == added
    assert f"The {added} images added before were kept; the other {6 - added} file" in status["message"]
    assert len(stored_keys("images")) == added  # no files of an uncommitted batch
    assert not stored_keys(import_prefix(status["id"]))


def zero_bomb(name: str, size_mib: int = 1024) -> bytes:
    """A real zip of about 1 MB whose one entry unpacks to size_mib MiB of zeros (deflate, built fast by
    repeating one fully-flushed compressed block)."""
    chunk = bytes(16 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    repeats, crc = size_mib // 16, 0
    for _ in range(repeats):
        crc = zlib.crc32(chunk, crc)
    data, size, fname = block * repeats + comp.flush(), repeats * len(chunk), name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, len(fname), 0) + fname
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), size, len(fname),
                          0, 0, 0, 0, 0, 0) + fname
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    return local + data + central + end


def test_a_1gib_entry_is_refused_on_its_own_without_being_read(app, logged_in, dataset, monkeypatch):
    buf = io.BytesIO(zero_bomb("cats/huge.png"))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("cats/fine.png", png(1))
    archive = buf.getvalue()
    assert len(archive) < 1_200_000 and zipfile.ZipFile(io.BytesIO(archive)).getinfo("cats/huge.png").file_size == 2**30
    read = {"bytes": 0}
    real_read = zipfile.ZipExtFile.read

    def counting_read(self, n=-1):
        data = real_read(self, n)
        read["bytes"] += len(data)
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    tracemalloc.start()
    try:
        status = import_zip(logged_in, dataset.id, archive, "bomb.zip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (status["status"], status["added"], status["error_count"]) == ("finished", 1, 1)
    assert status["errors"][0]["filename"] == "cats/huge.png"
    assert "too large" in status["errors"][0]["message"] and "1,024.0 MB" in status["errors"][0]["message"]
    assert read["bytes"] < 1_000_000  # only the small image was decompressed
    assert peak < 64 * 2**20


def test_identical_entries_are_hashed_and_decoded_once(app, logged_in, dataset, monkeypatch):
    from app.blueprints.datasets.images import intake

    buf = io.BytesIO()
    PILImage.new("RGB", (3000, 3000), (10, 120, 200)).save(buf, "PNG")  # 9 Mpx, a small file
    big = buf.getvalue()
    decodes = []
    real_open = intake._open_checked
    monkeypatch.setattr(intake, "_open_checked", lambda data, max_pixels: decodes.append(1) or real_open(data, max_pixels))
    status = import_zip(logged_in, dataset.id, make_zip({f"sky/{i}.png": big for i in range(40)}))
    assert (status["added"], status["duplicates"], status["processed"]) == (1, 39, 40)
    assert len(decodes) == 1
    broken = big[: len(big) // 2]  # copies of a damaged file: one decode, the same error for each
    status = import_zip(logged_in, dataset.id, make_zip({f"sky/bad{i}.png": broken for i in range(5)}))
    assert (status["added"], status["error_count"]) == (0, 5) and len(decodes) == 2
    assert len({e["message"] for e in status["errors"]}) == 1 and "damaged" in status["errors"][0]["message"]


def test_entry_names_with_line_breaks_cannot_break_the_download(app, logged_in, dataset):
    status = import_zip(logged_in, dataset.id, make_zip({"cats/evil\r\nX-Injected: 1.png": png(1)}))
    assert status["added"] == 1
    image = db.session.scalar(select(Image))
    assert "\r" not in image.filename and "\n" not in image.filename
    # a row stored before names were cleaned must not break the download either
    image.filename = "old\r\nSet-Cookie: x=1.png"
    db.session.commit()
    with logged_in.get(f"/datasets/{dataset.id}/images/{image.id}/file") as response:
        assert response.status_code == 200
        disposition = response.headers.get("Content-Disposition", "")
        assert "\r" not in disposition and "\n" not in disposition and "Set-Cookie" not in response.headers


def test_a_zip_refused_inside_the_job_says_why_as_a_stored_line(app, logged_in, dataset):
    """A limit the job meets (here lowered after the upload was accepted) is stored as a line with its
    values: English for the API, the reader's language on the page; a direct upload that meets it is told
    in the reader's language at once."""
    files = {f"cats/{i}.png": png(i) for i in range(5)}
    accepted = upload(logged_in, dataset.id, [("five.zip", make_zip(files))])
    assert accepted.status_code == 202
    app.config["MAX_ZIP_FILES"] = 4
    run_jobs(app)
    status = logged_in.get(accepted.json["import"]["status_url"]).json
    assert status["status"] == "failed" and "The zip has 5 files; the limit is 4." in status["message"]
    db.session.expire_all()
    reason = db.session.get(Import, status["id"]).message_line["parts"][0]["values"]["reason_word"]
    assert reason["key"] == "The zip has %(count)s files; the limit is %(limit)s. Nothing was imported."
    assert reason["values"] == {"count": 5, "limit": 4}
    page = logged_in.get(status["page_url"], headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)
    assert "O zip tem 5 arquivos; o limite é 4." in page and "The zip has" not in page
    refused = logged_in.post(f"/datasets/{dataset.id}/upload", content_type="multipart/form-data",
                             data={"files": [(io.BytesIO(make_zip(files)), "five.zip")]},
                             headers={"Accept": "application/json", "Accept-Language": "pt-BR"}).json["results"][0]
    assert refused["message"] == "O zip tem 5 arquivos; o limite é 4. Nada foi importado."
