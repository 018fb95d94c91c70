"""Labeling grid, bulk label/unlabel/delete."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.models import Image
from tests.datasets.conftest import expire_undo, png, upload

HX = {"HX-Request": "true"}


def _images(client, dataset_id: int, n: int) -> list[int]:
    results = upload(client, dataset_id, [(f"{i}.png", png(i)) for i in range(n)]).json["results"]
    return [r["image_id"] for r in results]


def test_bulk_label_and_unlabel_in_one_action(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    ants, bees = add_class(dataset.id, "ants"), add_class(dataset.id, "bees")
    ids = _images(logged_in, dataset.id, 4)
    response = logged_in.post(f"/datasets/{dataset.id}/images/label", headers=HX,
                              data={"image_ids": ids[:3], "label_id": bees.id, "filter": "all", "page": 1})
    assert response.status_code == 200
    html = response.data.decode()
    assert 'id="class-bar"' in html and 'hx-swap-oob="true"' in html  # counts update live
    assert "bees <span class=\"ds-chip-n\">3</span>" in html and "3 images labeled." in html
    labelled = db.session.scalars(select(Image).where(Image.label_id == bees.id)).all()
    assert sorted(i.id for i in labelled) == sorted(ids[:3])
    assert {(i.label_source, i.labeled_by_id) for i in labelled} == {("user", logged_in.user.id)}
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": ids[:2], "label_id": ""})
    db.session.expire_all()
    assert [db.session.get(Image, i).label_id for i in ids] == [None, None, bees.id, None]
    assert db.session.get(Image, ids[0]).label_source is None
    assert ants.id  # unused class stays


def test_bulk_label_refuses_images_of_another_dataset(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.services import create_dataset

    other = create_dataset(logged_in.user.id, "Other")
    label = add_class(dataset.id, "ants")
    mine, theirs = _images(logged_in, dataset.id, 1)[0], _images(logged_in, other.id, 1)[0]
    response = logged_in.post(f"/datasets/{dataset.id}/images/label", headers=HX,
                              data={"image_ids": [mine, theirs], "label_id": label.id})
    assert response.status_code == 404 and response.headers["HX-Retarget"] == "#flashes"
    assert b"Reload the page and try again." in response.data  # the page's words (the API has its own)
    assert db.session.get(Image, mine).label_id is None and db.session.get(Image, theirs).label_id is None
    foreign_label = add_class(other.id, "x")
    response = logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": [mine], "label_id": foreign_label.id})
    assert response.status_code == 404 and db.session.get(Image, mine).label_id is None
    empty = logged_in.post(f"/datasets/{dataset.id}/images/label", headers=HX, data={"label_id": label.id})
    assert empty.status_code == 422 and b"Select one or more images first." in empty.data


def _rows(dataset_id: int, n: int, label_id=None) -> list[int]:
    """n image rows straight into the database (the grid never opens their files), oldest first."""
    start = db.session.scalar(select(db.func.count(Image.id))) or 0
    db.session.execute(Image.__table__.insert(), [
        {"dataset_id": dataset_id, "sha256": f"{start + i:064x}", "label_id": label_id, "filename": f"{i}.png"}
        for i in range(n)])
    db.session.commit()
    return list(db.session.scalars(select(Image.id).where(Image.dataset_id == dataset_id).order_by(Image.id)))


def test_grid_pages_by_key_both_ways_with_filters(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.images.services import Cursor, image_page

    ants = add_class(dataset.id, "ants")
    ids = _rows(dataset.id, 7)[::-1]  # newest first, as the grid shows them
    first = image_page(dataset.id, "all", per_page=3)
    assert [i.id for i in first.images] == ids[:3] and (first.page, first.pages, first.total) == (1, 3, 7)
    assert first.newer is None and first.older == ids[2] and first.anchor is None
    second = image_page(dataset.id, "all", at=Cursor(before=first.older, page=2), per_page=3)
    assert [i.id for i in second.images] == ids[3:6] and second.page == 2
    assert (second.newer, second.older, second.anchor) == (ids[3], ids[5], ids[3] + 1)
    last = image_page(dataset.id, "all", at=Cursor(before=second.older, page=3), per_page=3)
    assert [i.id for i in last.images] == ids[6:] and last.older is None and last.page == 3
    back = image_page(dataset.id, "all", at=Cursor(after=last.newer, page=2), per_page=3)
    assert [i.id for i in back.images] == ids[3:6] and back.page == 2
    assert [i.id for i in image_page(dataset.id, "all", at=Cursor(after=back.newer, page=1), per_page=3).images] == ids[:3]
    again = image_page(dataset.id, "all", at=Cursor(before=second.anchor, page=2), per_page=3)  # after a bulk action
    assert [i.id for i in again.images] == ids[3:6]
    assert [i.id for i in image_page(dataset.id, "all", at=Cursor(before=1), per_page=3).images] == ids[:3]  # past the end
    labelled = _rows(dataset.id, 4, ants.id)[-4:][::-1]
    by_class = image_page(dataset.id, str(ants.id), per_page=3)
    assert [i.id for i in by_class.images] == labelled[:3] and by_class.total == 4
    assert [i.id for i in image_page(dataset.id, "unlabeled", per_page=10).images] == ids


def test_grid_pages_through_the_site_and_bulk_actions_stay_on_the_page(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    bees = add_class(dataset.id, "bees")
    ids = _rows(dataset.id, 100)[::-1]
    page = logged_in.get(f"/datasets/{dataset.id}/label?filter=unlabeled", headers=HX)
    html = page.data.decode()
    assert page.status_code == 200 and b"<html" not in page.data and html.count("data-tile") == 48
    assert "Page 1 of 3 · 100 images" in html and "Previous" not in html
    next_url = re.search(r'href="([^"]*before=\d+[^"]*)"', html).group(1).replace("&amp;", "&")
    html = logged_in.get(next_url, headers=HX).data.decode()
    shown = [int(i) for i in re.findall(r'name="image_ids" value="(\d+)"', html)]
    assert shown == ids[48:96] and "Page 2 of 3" in html and "Previous" in html
    response = logged_in.post(f"/datasets/{dataset.id}/images/label", headers=HX, data={
        "image_ids": shown[:2], "label_id": bees.id, "filter": "unlabeled", "page": "2",
        "before": re.search(r'name="before" value="(\d+)"', html).group(1)})
    after = response.data.decode()
    assert "2 images labeled." in after and "Page 2 of 3 · 98 images" in after
    assert [int(i) for i in re.findall(r'name="image_ids" value="(\d+)"', after)] == ids[50:98]
    oldest = re.search(r'href="([^"]*after=0[^"]*)"', html).group(1).replace("&amp;", "&")
    html = logged_in.get(oldest).data.decode()
    assert "<html" in html and "Page 3 of 3" in html
    assert [int(i) for i in re.findall(r'name="image_ids" value="(\d+)"', html)] == ids[52:]


def test_grid_pages_use_an_index_and_never_sort(app, logged_in, dataset):
    """The last page of a large dataset is read through an index range, like the first: no sort."""
    from sqlalchemy import event

    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.images.services import Cursor, image_page

    ants = add_class(dataset.id, "ants")
    ids = _rows(dataset.id, 300)
    _rows(dataset.id, 300, ants.id)
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        for filter_ in ("all", "unlabeled", str(ants.id)):
            image_page(dataset.id, filter_, at=Cursor(before=ids[50], page=12))
            image_page(dataset.id, filter_, at=Cursor(after=0, page=12))
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    grid_queries = [(s, p) for s, p in seen if "FROM images" in s]
    assert len(grid_queries) >= 12
    assert all(p[-1] == 0 for s, p in grid_queries if "OFFSET" in s)  # LIMIT 1 checks only, nothing skipped
    sqlite = db.engine.dialect.name == "sqlite"
    if not sqlite:  # a table this small is read whole by PostgreSQL; ask whether the index can serve it
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
    for statement, parameters in grid_queries:
        plan = " / ".join(row[-1] for row in db.session.connection().exec_driver_sql(
            ("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + statement, parameters))
        if sqlite:
            assert "TEMP B-TREE" not in plan and "SCAN" not in plan, (statement, plan)
        assert "Sort" not in plan and "Seq Scan" not in plan, (statement, plan)
        assert any(index in plan for index in ("ix_images_dataset_id", "ix_images_dataset_label_id",
                                               "ix_images_dataset_label_name")), plan  # the name index covers it too
    db.session.rollback()


def test_delete_images_removes_rows_and_unused_files(logged_in, dataset):
    from app.filestore import image_key
    from app.storage import get_storage

    ids = _images(logged_in, dataset.id, 2)
    sha = db.session.get(Image, ids[0]).sha256
    response = logged_in.post(f"/datasets/{dataset.id}/images/delete", headers=HX, data={"image_ids": [ids[0]]})
    assert response.status_code == 200 and b"1 image deleted." in response.data
    assert db.session.get(Image, ids[0]) is None and db.session.get(Image, ids[1]) is not None
    assert get_storage().exists(image_key(sha))  # until the undo offer runs out
    expire_undo()
    assert not get_storage().exists(image_key(sha))


def test_a_grid_page_counts_the_classes_once(app, logged_in, dataset):
    """The class bar and the Train button's readiness share one grouped count over the dataset's images
    (~25 ms each at 200,000); a search counts its matches for the bar and the totals for the button."""
    from sqlalchemy import event

    from app.blueprints.datasets.classes import add_class

    add_class(dataset.id, "ants")
    _rows(dataset.id, 5)
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        for query in ("", "?q=1", "?filter=unlabeled"):
            for headers in ({}, {"HX-Request": "true"}):
                seen.clear()
                assert logged_in.get(f"/datasets/{dataset.id}/label{query}", headers=headers).status_code == 200
                grouped = [s for s in seen if "FROM images" in s and "GROUP BY" in s]
                assert len(grouped) == (2 if query == "?q=1" else 1), (query, headers, grouped)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
