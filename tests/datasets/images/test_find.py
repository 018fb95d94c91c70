"""Find images by file name in the labeling grid: the service (substring, any case, % and _ as plain
characters, within a class or the unlabeled, by key across pages) and the pages (htmx partial or full
page, the query kept by pager, chips and bulk actions)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.models import Image

HX = {"HX-Request": "true"}


def _named(dataset_id: int, names: list[str], label_id=None) -> list[int]:
    """Image rows with these file names, straight into the database (Core executemany, as the importer
    writes them: the name key comes from the column's default); their ids in the order given."""
    start = db.session.scalar(select(db.func.count(Image.id))) or 0
    db.session.execute(Image.__table__.insert(), [
        {"dataset_id": dataset_id, "sha256": f"{start + i:064x}", "label_id": label_id, "filename": name}
        for i, name in enumerate(names)])
    db.session.commit()
    ids = db.session.scalars(select(Image.id).where(Image.dataset_id == dataset_id).order_by(Image.id.desc())
                             .limit(len(names)))
    return sorted(ids)


def _found(dataset_id: int, q: str, filter_: str = "all", **kwargs) -> list[str]:
    from app.blueprints.datasets.images.services import image_page

    return [i.filename for i in image_page(dataset_id, filter_, q=q, **kwargs).images]


def test_a_substring_of_the_name_in_any_case_and_any_script(logged_in, dataset):
    from app.blueprints.datasets.images.services import image_page

    _named(dataset.id, ["Ant_01.PNG", "giant.jpg", "bee.png", "ÉTÉ.jpg", "Straße.png", "plant.JPEG"])
    assert _found(dataset.id, "ant") == ["plant.JPEG", "giant.jpg", "Ant_01.PNG"]  # newest first
    assert _found(dataset.id, "ANT") == _found(dataset.id, "  aNt ") == _found(dataset.id, "ant")
    assert _found(dataset.id, "été") == ["ÉTÉ.jpg"]  # not only ASCII, as SQLite's LIKE would be
    assert _found(dataset.id, "STRASSE") == ["Straße.png"]  # case-folded, not just lower-cased
    assert _found(dataset.id, ".png") == ["Straße.png", "bee.png", "Ant_01.PNG"]
    found = image_page(dataset.id, q="ant")
    assert (found.total, found.q, found.pages) == (3, "ant", 1)
    assert _found(dataset.id, "wasp") == [] and image_page(dataset.id, q="wasp").total == 0
    for empty in ("", "   ", "\x00"):  # no search: every image
        page = image_page(dataset.id, q=empty)
        assert (page.total, page.q, len(page.images)) == (6, "", 6)


def test_percent_and_underscore_are_plain_characters(logged_in, dataset):
    _named(dataset.id, ["a_1.png", "ab1.png", "a%b.png", "axb.png", "a/b.png", "a!b.png"])
    assert _found(dataset.id, "_1") == ["a_1.png"]
    assert _found(dataset.id, "%") == ["a%b.png"] and _found(dataset.id, "a%b") == ["a%b.png"]
    assert _found(dataset.id, "a_b") == []
    assert _found(dataset.id, "/") == ["a/b.png"] and _found(dataset.id, "!") == ["a!b.png"]  # escape characters


def test_within_a_class_or_the_unlabeled(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.images.services import image_page

    ants, bees = add_class(dataset.id, "ants"), add_class(dataset.id, "bees")
    _named(dataset.id, ["nest-1.jpg", "field-1.jpg"], ants.id)
    _named(dataset.id, ["nest-2.jpg"], bees.id)
    _named(dataset.id, ["nest-3.jpg", "field-3.jpg"])
    assert _found(dataset.id, "nest", str(ants.id)) == ["nest-1.jpg"]
    assert _found(dataset.id, "nest", "unlabeled") == ["nest-3.jpg"]
    assert _found(dataset.id, "nest") == ["nest-3.jpg", "nest-2.jpg", "nest-1.jpg"]
    page = image_page(dataset.id, "unlabeled", q="field")
    assert (page.total, page.filter, [i.filename for i in page.images]) == (1, "unlabeled", ["field-3.jpg"])
    assert page.unlabeled == 1 and [c["count"] for c in page.counts] == [1, 0]  # the class bar: the matches


def test_the_class_bar_counts_the_matches_of_a_search(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.images.services import image_page, search_counts

    ants, bees, wasps = (add_class(dataset.id, name) for name in ("ants", "bees", "wasps"))
    _named(dataset.id, ["nest-1.jpg", "Nest-2.jpg", "field-1.jpg"], ants.id)
    _named(dataset.id, ["nest-3.jpg", "hive.jpg"], bees.id)
    _named(dataset.id, ["nest-4.jpg", "NEST-5.jpg", "nest-6.jpg", "field-2.jpg"])
    counts, unlabeled = search_counts(dataset.id, "NEST")
    assert [(c["label"].name, c["count"]) for c in counts] == [("ants", 2), ("bees", 1), ("wasps", 0)]
    assert unlabeled == 3  # every class in class order, one with no match too
    for filter_, total in (("all", 6), (str(ants.id), 2), (str(wasps.id), 0), ("unlabeled", 3)):
        page = image_page(dataset.id, filter_, q="nest")
        assert page.total == len(page.images) == total, filter_  # the total is the chips' count
        assert [c["count"] for c in page.counts] == [2, 1, 0] and page.unlabeled == 3  # whatever the filter
    assert search_counts(dataset.id, "_") == ([{"label": ants, "count": 0}, {"label": bees, "count": 0},
                                               {"label": wasps, "count": 0}], 0)  # a plain character
    plain = image_page(dataset.id, str(bees.id))
    assert [c["count"] for c in plain.counts] == [3, 2, 0] and plain.unlabeled == 4  # no search: the classes


def test_pages_by_key_keep_the_search(logged_in, dataset):
    from app.blueprints.datasets.images.services import Cursor, image_page

    names = [f"{'cat' if i % 3 == 0 else 'dog'}-{i:02d}.jpg" for i in range(21)]  # 7 cats among dogs
    ids = _named(dataset.id, names)
    cats = [i for i, name in zip(ids, names) if name.startswith("cat")][::-1]  # newest first
    first = image_page(dataset.id, q="CAT", per_page=3)
    assert [i.id for i in first.images] == cats[:3] and (first.page, first.pages, first.total) == (1, 3, 7)
    second = image_page(dataset.id, q="cat", at=Cursor(before=first.older, page=2), per_page=3)
    assert [i.id for i in second.images] == cats[3:6] and second.page == 2 and second.anchor == cats[3] + 1
    last = image_page(dataset.id, q="cat", at=Cursor(before=second.older, page=3), per_page=3)
    assert [i.id for i in last.images] == cats[6:] and last.older is None
    back = image_page(dataset.id, q="cat", at=Cursor(after=last.newer, page=2), per_page=3)
    assert [i.id for i in back.images] == cats[3:6]
    oldest = image_page(dataset.id, q="cat", at=Cursor(after=0, page=3), per_page=3)
    assert [i.id for i in oldest.images] == cats[-3:] and oldest.page == 3  # the oldest full page


def test_a_search_reads_the_name_index_and_a_miss_reads_no_rows(app, logged_in, dataset):
    from sqlalchemy import event

    from app.blueprints.datasets.images.services import Cursor, image_page

    ids = _named(dataset.id, [f"img{i}.jpg" for i in range(200)])
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert image_page(dataset.id, q="nothing-like-it").images == []
        missed = len(seen)
        for filter_ in ("all", "unlabeled"):
            assert len(image_page(dataset.id, filter_, q="IMG1", at=Cursor(before=ids[150], page=2), per_page=5).images) == 5
            assert len(image_page(dataset.id, filter_, q="img1", at=Cursor(after=0, page=9), per_page=5).images) == 5
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    searched = [(s, p) for s, p in seen[:missed] if "FROM images" in s and "LIKE" in s]
    assert len(searched) == 1 and "count" in searched[0][0].lower()  # the count; no page of rows read
    if db.engine.dialect.name == "sqlite":  # PostgreSQL reads a table this small whole
        for statement, parameters in [(s, p) for s, p in seen if "FROM images" in s and "LIKE" in s]:
            plan = " / ".join(row[-1] for row in db.session.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters))
            assert "COVERING INDEX ix_images_dataset_label_name" in plan, (statement, plan)
            assert "TEMP B-TREE FOR GROUP BY" not in plan, (statement, plan)  # the chips: in index order
    assert any("GROUP BY" in s for s, _ in seen[:missed] if "LIKE" in s)  # the chips count the search's matches
    db.session.rollback()


def _shown(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="image_ids" value="(\d+)"', html)]


def test_the_page_finds_as_a_form_and_as_an_htmx_partial(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    ants = add_class(dataset.id, "ants")
    ids = _named(dataset.id, ["ant-a.jpg", "bee.jpg", "Ant-b.jpg"])
    full = logged_in.get(f"/datasets/{dataset.id}/label?q=ant")
    html = full.data.decode()
    assert full.status_code == 200 and "<html" in html and 'role="search"' in html
    assert re.search(r'<input type="search" id="find-q" name="q" value="ant"', html)
    assert "2 images match “ant”" in html and _shown(html) == [ids[2], ids[0]]
    assert f'/datasets/{dataset.id}/label?filter={ants.id}&amp;q=ant"' in html  # a chip searches within it
    part = logged_in.get(f"/datasets/{dataset.id}/label?filter=unlabeled&q=B", headers=HX)
    html = part.data.decode()
    assert part.status_code == 200 and "<html" not in html and 'id="find-q"' not in html  # the box keeps focus
    assert "2 unlabeled images match “B”" in html and _shown(html) == [ids[2], ids[1]]
    assert re.search(r'id="find-filter" name="filter" value="unlabeled" hx-swap-oob="true"', html)
    assert '<input type="hidden" name="q" value="B">' in html  # bulk actions post it back
    one = logged_in.get(f"/datasets/{dataset.id}/label?q=bee.jpg", headers=HX).data.decode()
    assert "1 image matches “bee.jpg”" in one
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": [ids[0]], "label_id": ants.id})
    within = logged_in.get(f"/datasets/{dataset.id}/label?filter={ants.id}&q=ant", headers=HX).data.decode()
    assert "1 image of “ants” matches “ant”" in within  # says where it looked: not the whole dataset
    none = logged_in.get(f"/datasets/{dataset.id}/label?q=<b>wasp", headers=HX).data.decode()
    assert "0 images match “&lt;b&gt;wasp”" in none and "<b>wasp" not in none and _shown(none) == []
    plain = logged_in.get(f"/datasets/{dataset.id}/label?q=", headers=HX).data.decode()
    assert "match" not in plain and len(_shown(plain)) == 3 and 'name="q"' not in plain


def _chips(html: str) -> dict[str, str]:
    """The class bar's chips: their text (name, or All / Unlabeled) -> the count they show."""
    bar = html[html.index('id="class-bar"'):]
    return {re.sub(r"<[^>]+>", "", name).strip(): n for name, n in
            re.findall(r'class="ds-chip[^"]*"[^>]*>(.*?)<span class="ds-chip-n">([^<]*)</span>', bar, re.S)}


def test_the_chips_count_within_the_search_and_say_so(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    ants, bees = add_class(dataset.id, "Ants"), add_class(dataset.id, "Bees")
    _named(dataset.id, [f"ant-{i}.jpg" for i in range(12)] + ["queen.jpg"], ants.id)
    _named(dataset.id, ["bee.jpg", "plant.jpg"], bees.id)
    _named(dataset.id, ["giant.png", "x.png"])
    plain = logged_in.get(f"/datasets/{dataset.id}/label").data.decode()
    assert _chips(plain) == {"All": "17", "Unlabeled": "2", "Ants": "13", "Bees": "2"}
    assert "data-chips-scope" not in plain and "ds-filters-search" not in plain
    for headers in ({}, HX):  # the full page, and the partial that updates the bar out of band
        html = logged_in.get(f"/datasets/{dataset.id}/label?filter={bees.id}&q=ANT", headers=headers).data.decode()
        assert _chips(html) == {"All": "14", "Unlabeled": "1", "Ants": "12", "Bees": "1"}
        assert re.search(r'<span class="ds-filters-scope" data-chips-scope>Matching “ANT”:</span>', html)
        assert "1 image of “Bees” matches “ANT”" in html
    assert _chips(logged_in.get(f"/datasets/{dataset.id}/label?q=wasp", headers=HX).data.decode()) == {
        "All": "0", "Unlabeled": "0", "Ants": "0", "Bees": "0"}
    html = logged_in.get(f"/datasets/{dataset.id}/label?q=<i>", headers=HX).data.decode()
    assert "Matching “&lt;i&gt;”:" in html and "<i>" not in html


def test_the_pager_keeps_the_search(logged_in, dataset):
    ids = _named(dataset.id, [f"{'cat' if i % 2 else 'dog'}{i}.jpg" for i in range(120)])
    cats = ids[1::2][::-1]
    html = logged_in.get(f"/datasets/{dataset.id}/label?q=cat", headers=HX).data.decode()
    assert "60 images match “cat”" in html and "Page 1 of 2 · 60 images" in html and _shown(html) == cats[:48]
    next_url = re.search(r'href="([^"]*before=\d+[^"]*)"', html).group(1).replace("&amp;", "&")
    assert "q=cat" in next_url
    html = logged_in.get(next_url, headers=HX).data.decode()
    assert _shown(html) == cats[48:] and "Page 2 of 2" in html
    newest = re.search(r'href="([^"]*)"[^>]*>« Newest', html).group(1).replace("&amp;", "&")
    assert "q=cat" in newest and _shown(logged_in.get(newest, headers=HX).data.decode()) == cats[:48]


def test_bulk_actions_keep_the_search(logged_in, dataset):
    from app.blueprints.datasets.classes import add_class

    bees = add_class(dataset.id, "bees")
    ids = _named(dataset.id, ["hive-1.jpg", "flower.jpg", "hive-2.jpg", "hive-3.jpg"])
    form = {"image_ids": [ids[0]], "label_id": bees.id, "filter": "unlabeled", "q": "hive", "page": "1"}
    response = logged_in.post(f"/datasets/{dataset.id}/images/label", headers=HX, data=form)
    html = response.data.decode()
    assert response.status_code == 200 and "1 image labeled." in html
    assert "2 unlabeled images match “hive”" in html and _shown(html) == [ids[3], ids[2]]  # still unlabeled
    assert '<input type="hidden" name="q" value="hive">' in html
    response = logged_in.post(f"/datasets/{dataset.id}/images/delete", headers=HX,
                              data={"image_ids": [ids[3]], "filter": "unlabeled", "q": "hive"})
    html = response.data.decode()
    assert "1 image deleted." in html and "1 unlabeled image matches “hive”" in html and _shown(html) == [ids[2]]
    undo = re.search(r'hx-post="([^"]*/undo/\d+)"', html).group(1)
    html = logged_in.post(undo, headers=HX, data={"filter": "unlabeled", "q": "hive"}).data.decode()
    assert "2 unlabeled images match “hive”" in html and _shown(html) == [ids[3], ids[2]]
    response = logged_in.post(f"/datasets/{dataset.id}/images/label",  # without JavaScript: a redirect
                              data={"image_ids": [ids[2]], "label_id": "", "filter": "all", "q": "hive"})
    assert response.status_code == 302 and "q=hive" in response.headers["Location"]
    assert "filter=all" in response.headers["Location"]


def test_another_users_dataset_is_not_found(client, make_user, logged_in, dataset):
    from app.blueprints.datasets.services import create_dataset

    bob = make_user("bob")
    theirs = create_dataset(bob.id, "Bob's")
    _named(theirs.id, ["secret.jpg"])
    assert logged_in.get(f"/datasets/{theirs.id}/label?q=secret").status_code == 404
    assert logged_in.get(f"/datasets/{theirs.id}/label?q=secret", headers=HX).status_code == 404


@pytest.mark.parametrize("name", ["Été.JPG", "ß" * 200])
def test_the_name_key_is_set_on_every_insert(logged_in, dataset, name):
    from app.models import filename_key

    [image_id] = _named(dataset.id, [name])
    key = db.session.execute(text("SELECT filename_key FROM images WHERE id = :i"), {"i": image_id}).scalar()
    assert key == filename_key(name) and len(key) <= 255


def test_the_grid_address_varies_on_hx_request(logged_in, dataset):
    """The same ?q= address is a fragment for htmx and a page for the browser: the browser's cache must
    keep them apart, or Back from another page shows the fragment (no header, no styles)."""
    _named(dataset.id, ["ant.png"])
    url = f"/datasets/{dataset.id}/label?filter=all&q=ant"
    fragment, page = logged_in.get(url, headers=HX), logged_in.get(url)
    assert "<html" not in fragment.get_data(as_text=True) and "<html" in page.get_data(as_text=True)
    for response in (fragment, page):
        assert "HX-Request" in response.headers.get("Vary", "")


def test_htmx_restoring_a_search_it_has_no_copy_of_gets_the_whole_page(logged_in, dataset):
    """Back to a search address htmx pushed, once its history cache dropped that page (it keeps 10, and
    every search pushes one): htmx asks with HX-History-Restore-Request and puts the answer in
    place of the whole body, so the answer must be the page (header, find box, class bar once), not the grid."""
    _named(dataset.id, ["ant.png", "bee.png"])
    url = f"/datasets/{dataset.id}/label?filter=all&q=ant"
    html = logged_in.get(url, headers={**HX, "HX-History-Restore-Request": "true"}).get_data(as_text=True)
    assert "<html" in html and 'class="topbar"' in html and "data-find" in html
    assert html.count('id="find-filter"') == 1 and html.count("hx-swap-oob") == 0
    assert "1 image matches “ant”" in html
