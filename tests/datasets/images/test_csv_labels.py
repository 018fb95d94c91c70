"""Labels from a CSV: in a zip (flat Kaggle-style images, or folder-per-class overridden by rows), and for
images already in a dataset (at once or in the background, ambiguous names, refusals, undo, the API).
Jobs run in a real burst worker."""
from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, select, update

from app.extensions import db
from app.models import Image, Import, Label, UndoAction, utcnow
from tests.conftest import login, run_jobs
from tests.datasets.conftest import import_zip, make_zip, png, upload


def _labels(dataset_id: int) -> dict[str, str | None]:
    rows = db.session.execute(select(Image.filename, Label.name).outerjoin(Label, Label.id == Image.label_id)
                              .where(Image.dataset_id == dataset_id)).all()
    return dict(rows)


def _class_names(dataset_id: int) -> set[str]:
    return set(db.session.scalars(select(Label.name).where(Label.dataset_id == dataset_id)))


def _post_csv(client, dataset_id: int, content: bytes, json: bool = True, name: str = "labels.csv"):
    headers = {"Accept": "application/json"} if json else {}
    return client.post(f"/datasets/{dataset_id}/labels/import", data={"file": (io.BytesIO(content), name)},
                       headers=headers, content_type="multipart/form-data")


# --- a CSV inside a zip ----------------------------------------------------------------------------

def test_flat_zip_with_labels_csv_labels_by_id_with_or_without_extension(logged_in, dataset):
    csv_text = ("id,label\n"
                "a1,ants\n"            # no extension
                "train/a2.png,ants\n"  # a path
                "b1.png,bees\n"        # a base name
                "b1.png,bees\n"        # listed again with the same class: fine
                "missing,bees\n"       # no such file
                "c9,\n"                # no class
                "x1,ants\nx1,bees\n")  # listed twice with different classes: not labeled
    archive = make_zip({"train/a1.png": png(1), "train/a2.png": png(2), "train/b1.png": png(3),
                        "train/c1.png": png(4), "train/x1.png": png(5), "labels.csv": csv_text.encode()})
    status = import_zip(logged_in, dataset.id, archive)
    assert (status["status"], status["total"], status["added"], status["error_count"]) == ("finished", 5, 5, 0)
    assert _labels(dataset.id) == {"a1.png": "ants", "a2.png": "ants", "b1.png": "bees", "c1.png": None,
                                   "x1.png": None}
    assert _class_names(dataset.id) == {"ants", "bees"}  # the images' folder is not a class
    message = status["message"]
    assert "labels.csv names 3 files of the zip with their class (the images added get it)." in message
    assert "1 row names a file that is not in the zip." in message
    assert "1 file is listed more than once with different classes (not labeled)." in message
    assert "1 row has an empty file name or class." in message
    page = logged_in.get(status["page_url"])
    assert b"labels.csv names 3 files of the zip with their class" in page.data


def test_folder_per_class_zip_with_a_csv_that_overrides_some(logged_in, dataset):
    archive = make_zip({"pets/cats/1.png": png(1), "pets/cats/2.png": png(2), "pets/dogs/3.png": png(3),
                        "pets/labels.csv": b"filename,class\n2.png,dogs\nnot-here.jpg,cats\n"})
    status = import_zip(logged_in, dataset.id, archive)
    assert status["status"] == "finished" and status["added"] == 3
    assert _labels(dataset.id) == {"1.png": "cats", "2.png": "dogs", "3.png": "dogs"}
    assert "1 row names a file that is not in the zip." in status["message"]


def test_a_csv_that_is_not_utf8_in_a_zip_leaves_the_folders_as_they_are(logged_in, dataset):
    archive = make_zip({"cats/1.png": png(1), "labels.csv": "fichier,classe\n1.png,chiens\xe9\n".encode("latin-1")})
    status = import_zip(logged_in, dataset.id, archive)
    assert status["status"] == "finished" and _labels(dataset.id) == {"1.png": "cats"}
    assert "labels.csv was not used for labels: The CSV file is not UTF-8 text." in status["message"]


def test_a_zip_csv_counts_the_files_it_names_not_the_images_added(logged_in, dataset):
    _add_images(logged_in, dataset.id, ["old.png"])  # png(0): the zip's a0.png is a duplicate of it
    archive = make_zip({"train/a0.png": png(0), "train/a1.png": png(1), "labels.csv": b"id,label\na0,ants\na1,ants\n"})
    status = import_zip(logged_in, dataset.id, archive)
    assert (status["added"], status["duplicates"]) == (1, 1)
    assert "labels.csv names 2 files of the zip with their class (the images added get it)." in status["message"]
    assert "get their class from the CSV" not in status["message"]
    assert _labels(dataset.id) == {"old.png": None, "a1.png": "ants"}  # a duplicate skipped keeps its class


@pytest.mark.parametrize("content, why", [
    (b"foo,bar,baz\nx1,ants\nx2,bees\n", "labels.csv was not used for labels: The first row (foo, bar, baz) "
                                          "names no column this app knows"),
    (b"filename\n1.png\n", "labels.csv was not used for labels: The CSV file has only one column (filename)."),
])
def test_a_zip_csv_of_no_use_is_reported_and_the_folders_decide(logged_in, dataset, content, why):
    archive = make_zip({"cats/1.png": png(1), "dogs/2.png": png(2), "labels.csv": content})
    status = import_zip(logged_in, dataset.id, archive)
    assert status["status"] == "finished" and _labels(dataset.id) == {"1.png": "cats", "2.png": "dogs"}
    assert why in status["message"] and "e.g. a header “filename,label”" in status["message"]


# --- a CSV for images already in the dataset -------------------------------------------------------

def _add_images(client, dataset_id: int, names: list[str]) -> None:
    response = upload(client, dataset_id, [(name, png(i)) for i, name in enumerate(names)])
    assert [r["status"] for r in response.json["results"]] == ["added"] * len(names)


def test_csv_labels_existing_images_at_once_and_can_be_undone(logged_in, dataset):
    _add_images(logged_in, dataset.id, ["a1.png", "a2.png", "b1.jpg", "dup.png", "sub/dup.png", "free.png"])
    csv_text = b"filename,label\na1,ants\na2.png,ants\nb1,bees\ndup,bees\nnope,bees\n"
    answer = _post_csv(logged_in, dataset.id, csv_text)
    assert answer.status_code == 200
    assert {k: answer.json[k] for k in ("rows", "labeled", "unmatched", "ambiguous", "classes_created")} == {
        "rows": 5, "labeled": 3, "unmatched": 1, "ambiguous": 1, "classes_created": 2}
    assert answer.json["message"] == ("3 images labeled. 2 rows were left out: 1 row names no file of this dataset "
                                      "(e.g. ‘nope’). 1 file name is held by several images (not labeled). "
                                      "2 classes created.")
    assert answer.json["left_out"] == 2
    assert _labels(dataset.id)["a1.png"] == "ants" and _labels(dataset.id)["b1.jpg"] == "bees"
    assert _labels(dataset.id)["dup.png"] is None  # two images hold that name: not guessed
    assert set(db.session.scalars(select(Image.label_source).where(Image.label_id.is_not(None)))) == {"import"}

    page = _post_csv(logged_in, dataset.id, b"filename,label\nfree,wasps\n", json=False)
    assert page.status_code == 302 and "undo=" in page.headers["Location"]
    shown = logged_in.get(page.headers["Location"])
    assert b"1 image labeled." in shown.data and b"data-undo" in shown.data
    undo_id = int(page.headers["Location"].rsplit("undo=", 1)[1])
    assert f'name="next" value="/datasets/{dataset.id}"' in shown.get_data(as_text=True)
    undone = logged_in.post(f"/datasets/{dataset.id}/images/undo/{undo_id}", data={"next": f"/datasets/{dataset.id}"})
    assert undone.status_code == 302 and undone.headers["Location"].endswith(f"/datasets/{dataset.id}")  # back there
    assert _labels(dataset.id)["free.png"] is None and _labels(dataset.id)["a1.png"] == "ants"


def test_a_large_csv_is_applied_in_the_background_with_progress(app, logged_in, dataset):
    app.config["LABELS_SYNC_MAX_ROWS"] = 2
    _add_images(logged_in, dataset.id, ["a.png", "b.png", "c.png"])
    answer = _post_csv(logged_in, dataset.id, b"image;category\na;x\nb;y\nc.png;x\nzz;y\n")
    assert answer.status_code == 202
    assert answer.json["import"]["kind"] == "labels" and answer.json["import"]["status"] == "queued"
    assert _labels(dataset.id) == {"a.png": None, "b.png": None, "c.png": None}
    run_jobs(app)
    status = logged_in.get(answer.json["import"]["status_url"]).json
    assert (status["status"], status["added"], status["processed"]) == ("finished", 3, 3)
    assert status["message"] == ("3 images labeled. 1 row was left out: 1 row names no file of this dataset "
                                 "(e.g. ‘zz’). 2 classes created.")
    assert status["error_count"] == 1  # the rows left out
    assert _labels(dataset.id) == {"a.png": "x", "b.png": "y", "c.png": "x"}
    page = logged_in.get(f"/datasets/{dataset.id}").get_data(as_text=True)
    assert "3 images labeled" in page and 'data-import-outcome="partial"' in page and "done, rows left out" in page
    assert db.session.scalar(select(func.count(UndoAction.id))) == 1  # recorded, like other bulk labels


def test_a_background_import_that_labels_nothing_says_why_with_examples(app, logged_in, dataset):
    app.config["LABELS_SYNC_MAX_ROWS"] = 0
    _add_images(logged_in, dataset.id, ["IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg", "IMG_0004.jpg"])
    csv_text = b"id,label\ncat.1.jpg,cat\ncat.2.jpg,cat\ndog.1.jpg,dog\ndog.2.jpg,dog\n"
    answer = _post_csv(logged_in, dataset.id, csv_text)
    run_jobs(app)
    status = logged_in.get(answer.json["import"]["status_url"]).json
    assert (status["status"], status["added"], status["error_count"]) == ("finished", 0, 4)
    assert status["message"] == ("No image was labeled: no row of the CSV matched an image in this dataset. Rows name "
                                 "files like ‘cat.1.jpg’, ‘cat.2.jpg’, ‘dog.1.jpg’; the dataset has files like "
                                 "‘IMG_0001.jpg’, ‘IMG_0002.jpg’, ‘IMG_0003.jpg’.")
    page = logged_in.get(f"/datasets/{dataset.id}").get_data(as_text=True)
    assert 'data-import-outcome="nothing"' in page and '<span class="badge badge-failed">nothing labeled</span>' in page
    assert "No row of the CSV matched" not in page and "no row of the CSV matched an image" in page
    assert "Undo these labels" not in page and _class_names(dataset.id) == set()


def test_a_background_import_of_labels_offers_its_undo_while_other_undos_last(app, client, make_user, logged_in,
                                                                                dataset):
    from app.blueprints.datasets.sharing import share_dataset

    app.config["LABELS_SYNC_MAX_ROWS"] = 0
    _add_images(logged_in, dataset.id, ["a.png", "b.png"])
    _post_csv(logged_in, dataset.id, b"filename,label\na,ants\n")
    run_jobs(app)
    answer = _post_csv(logged_in, dataset.id, b"filename,label\na,bees\nb,bees\n")
    run_jobs(app)
    assert _labels(dataset.id) == {"a.png": "bees", "b.png": "bees"}
    imp = db.session.get(Import, answer.json["import"]["id"])
    page = logged_in.get(f"/datasets/{dataset.id}").get_data(as_text=True)
    undo_url = f"/datasets/{dataset.id}/images/undo/{imp.undo_action_id}"
    assert page.count("Undo these labels") == 2 and f'action="{undo_url}"' in page  # each import its own
    assert 'data-import-outcome="finished"' in page
    make_user("ed")
    share_dataset(dataset, "ed", "editor")
    logged_in.post("/logout")
    login(client, "ed")
    assert "Undo these labels" not in client.get(f"/datasets/{dataset.id}").get_data(as_text=True)  # not his
    client.post("/logout")
    login(client, logged_in.user.username)
    undone = client.post(undo_url, data={"next": f"/datasets/{dataset.id}"})
    assert undone.status_code == 302 and undone.headers["Location"].endswith(f"/datasets/{dataset.id}")
    assert _labels(dataset.id) == {"a.png": "ants", "b.png": None}  # the labels before that import
    shown = client.get(f"/datasets/{dataset.id}").get_data(as_text=True)
    assert "Undone: 2 images have their previous class again." in shown and shown.count("Undo these labels") == 1
    db.session.execute(update(UndoAction).values(created_at=utcnow() - timedelta(seconds=app.config["UNDO_SECONDS"] + 1)))
    db.session.commit()
    assert "Undo these labels" not in client.get(f"/datasets/{dataset.id}").get_data(as_text=True)  # too late


BAD_CSVS = [
    ("filename,label\nä.png,ants\n".encode("utf-16"), "not UTF-8 text"),
    (b"filename,label\n", "no rows of labels"),
    (b"\n\n", "no rows of labels"),
    (b"filename,label\n" + b"a.png,ants\n" * 200, "larger than"),
    (b"filename\n" + b"a.png\n" * 60, "The CSV file has only one column (filename). Expected two columns: the file "
                                       "name and the class, e.g. a header “filename,label”."),
    (b"foo,bar,baz\n" + b"x.png,ants,1\n" * 5, "The first row (foo, bar, baz) names no column this app knows, so "
                                               "the first two columns were read as the file name and the class, and "
                                               "no row names an image."),
]


def _nothing_changed(dataset_id: int) -> None:
    assert _labels(dataset_id) == {"a.png": None}
    assert not _class_names(dataset_id) and db.session.scalar(select(func.count(Import.id))) == 0


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("content, why", BAD_CSVS)
def test_bad_csvs_are_refused_and_nothing_changes(app, logged_in, dataset, content, why, background):
    app.config["LABELS_CSV_MAX_BYTES"] = 1000
    app.config["LABELS_SYNC_MAX_ROWS"] = 0 if background else 500
    _add_images(logged_in, dataset.id, ["a.png"])
    answer = _post_csv(logged_in, dataset.id, content)
    assert answer.status_code == 422 and why in answer.json["error"]
    _nothing_changed(dataset.id)


@pytest.mark.parametrize("content, why", BAD_CSVS[:2] + BAD_CSVS[-2:])
def test_a_csv_refused_on_the_page_comes_back_to_the_dataset_page_with_why(app, logged_in, dataset, content, why):
    _add_images(logged_in, dataset.id, ["a.png"])
    answer = _post_csv(logged_in, dataset.id, content, json=False)
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/datasets/{dataset.id}")
    page = logged_in.get(answer.headers["Location"]).get_data(as_text=True)
    assert 'class="flash flash-error"' in page and why in page.replace("&#34;", '"')
    _nothing_changed(dataset.id)
    no_file = logged_in.post(f"/datasets/{dataset.id}/labels/import", data={}, content_type="multipart/form-data")
    assert no_file.status_code == 302 and "Choose a CSV file of labels." in logged_in.get(f"/datasets/{dataset.id}").text
    htmx = logged_in.post(f"/datasets/{dataset.id}/labels/import", headers={"HX-Request": "true"},
                          data={"file": (io.BytesIO(content), "l.csv")}, content_type="multipart/form-data")
    assert htmx.status_code == 422 and htmx.headers["HX-Retarget"] == "#flashes"


def test_a_csv_without_a_header_is_read_when_its_rows_name_images(logged_in, dataset):
    _add_images(logged_in, dataset.id, ["a1.png", "b1.png", "c.png"])
    answer = _post_csv(logged_in, dataset.id, b"\na1,ants\nb1.png,bees\nnope,bees\n")
    assert answer.status_code == 200 and (answer.json["rows"], answer.json["labeled"]) == (3, 2)
    assert _labels(dataset.id) == {"a1.png": "ants", "b1.png": "bees", "c.png": None}


def test_the_result_says_only_the_counts_that_are_not_zero_and_warns_when_nothing_was_labeled(logged_in, dataset):
    _add_images(logged_in, dataset.id, ["a.png"])
    labeled = _post_csv(logged_in, dataset.id, b"filename,label\na,ants\n")
    assert labeled.json["message"] == "1 image labeled. 1 class created."
    none = _post_csv(logged_in, dataset.id, b"filename,label\nnope,ants\n", json=False)
    page = logged_in.get(none.headers["Location"]).get_data(as_text=True)
    assert ('<div class="flash flash-warning" role="status">No image was labeled: no row of the CSV matched an image '
            'in this dataset. Rows name files like ‘nope’; the dataset has files like ‘a.png’.</div>') in page
    again = _post_csv(logged_in, dataset.id, b"filename,label\na,bees\n", json=False)
    page = logged_in.get(again.headers["Location"]).get_data(as_text=True)
    assert '<div class="flash flash-success" role="status">1 image labeled. 1 class created.</div>' in page


def test_viewers_are_refused_and_strangers_see_nothing(client, make_user, logged_in, dataset):
    from app.blueprints.datasets.sharing import share_dataset

    _add_images(logged_in, dataset.id, ["a.png"])
    make_user("vic"), make_user("eve")
    share_dataset(dataset, "vic", "viewer")
    logged_in.post("/logout")
    login(client, "vic")
    assert b"labels/import" not in client.get(f"/datasets/{dataset.id}").data
    assert _post_csv(client, dataset.id, b"a,ants\n").status_code == 403
    client.post("/logout")
    login(client, "eve")
    assert _post_csv(client, dataset.id, b"a,ants\n").status_code == 404
    assert _labels(dataset.id) == {"a.png": None}


def test_the_dataset_page_offers_the_form_to_editors(logged_in, dataset):
    page = logged_in.get(f"/datasets/{dataset.id}")
    assert f'action="/datasets/{dataset.id}/labels/import"'.encode() in page.data


# --- the JSON API ----------------------------------------------------------------------------------

def _token(user_id: int) -> dict:
    from app.blueprints.predict.tokens import create_token

    return {"Authorization": f"Bearer {create_token(user_id, 'tests')[1]}"}


def test_api_labels_from_a_csv_at_once_or_in_the_background(app, logged_in, dataset):
    _add_images(logged_in, dataset.id, ["a.png", "b.png"])
    headers = _token(logged_in.user.id)
    url = f"/api/v1/datasets/{dataset.id}/labels"
    now = logged_in.open(url, method="POST", headers=headers, csrf=False,
                         data={"file": (io.BytesIO(b"file,target\na,x\n"), "l.csv")})
    assert now.status_code == 200 and (now.json["labeled"], now.json["classes_created"]) == (1, 1)
    app.config["LABELS_SYNC_MAX_ROWS"] = 0
    later = logged_in.open(url, method="POST", headers=headers, csrf=False,
                           data={"file": (io.BytesIO(b"file,target\nb,y\n"), "l.csv")})
    assert later.status_code == 202 and later.json["import"]["status_url"].startswith("/api/v1/")
    run_jobs(app)
    done = logged_in.open(later.json["import"]["status_url"], headers=headers, csrf=False).json
    assert done["status"] == "finished" and done["added"] == 1
    assert _labels(dataset.id) == {"a.png": "x", "b.png": "y"}
    refused = logged_in.open(url, method="POST", headers=headers, csrf=False,
                             data={"file": (io.BytesIO(b"\xff\xfe\x00"), "l.csv")})
    assert refused.status_code == 422 and refused.json["code"] == "validation_error"
    unknown = logged_in.open(url, method="POST", headers=headers, csrf=False,
                             data={"file": (io.BytesIO(b"foo,bar,baz\n" + b"zz,x,1\n" * 5), "l.csv")})
    assert unknown.status_code == 422 and "e.g. a header “filename,label”" in unknown.json["error"]


# --- size ------------------------------------------------------------------------------------------

def test_thousands_of_rows_go_in_chunked_statements(app, logged_in, dataset):
    count = 3000
    db.session.execute(insert(Image), [
        {"dataset_id": dataset.id, "sha256": hashlib.sha256(b"%d" % i).hexdigest(), "filename": f"{i:05d}.jpg",
         "width": 8, "height": 8, "size_bytes": 10, "format": "JPEG", "created_at": utcnow()} for i in range(count)])
    db.session.commit()
    csv_text = "id,label\n" + "".join(f"{i:05d},{'odd' if i % 2 else 'even'}\n" for i in range(count))
    answer = _post_csv(logged_in, dataset.id, csv_text.encode())
    assert answer.status_code == 202
    widest = []

    def watch(conn, cursor, statement, parameters, context, executemany):
        if not executemany and isinstance(parameters, (list, tuple, dict)):
            widest.append(len(parameters))

    event.listen(db.engine, "before_cursor_execute", watch)
    try:
        run_jobs(app)
    finally:
        event.remove(db.engine, "before_cursor_execute", watch)
    assert max(widest) <= 510  # 500 ids and a few values per statement, never the 3,000 at once
    labels = dict(db.session.execute(select(Label.name, func.count(Image.id)).join(Image, Image.label_id == Label.id)
                                     .where(Image.dataset_id == dataset.id).group_by(Label.name)).all())
    assert labels == {"even": count // 2, "odd": count // 2}
