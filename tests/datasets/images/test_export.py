"""Export/import round trip: a dataset exported as a zip imports again as the same images and labels."""
from __future__ import annotations

import io
import zipfile

from sqlalchemy import select

from app.extensions import db
from app.models import Image, Label
from tests.datasets.conftest import import_zip, make_zip, png, upload


def _content(dataset_id: int) -> set[tuple[str, str | None]]:
    rows = db.session.execute(select(Image.sha256, Label.name).outerjoin(Label, Label.id == Image.label_id)
                              .where(Image.dataset_id == dataset_id)).all()
    return {(sha, name) for sha, name in rows}


def test_export_then_import_gives_same_images_and_labels(logged_in, dataset):
    from app.blueprints.datasets.services import create_dataset

    archive = make_zip({"ants/a.png": png(1), "ants/same-name.png": png(2), "bees/same-name.png": png(3),
                        "loose.png": png(4)})
    import_zip(logged_in, dataset.id, archive, "in.zip")
    upload(logged_in, dataset.id, [("x.jpg", png(5))])
    response = logged_in.get(f"/datasets/{dataset.id}/export")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == "attachment; filename=Ants_and_bees.zip"
    exported = response.data
    names = sorted(zipfile.ZipFile(io.BytesIO(exported)).namelist())
    assert names == ["ants/a.png", "ants/same-name.png", "bees/same-name.png", "loose.png", "x.png"]
    copy = create_dataset(logged_in.user.id, "Copy")
    status = import_zip(logged_in, copy.id, exported, "export.zip")
    assert (status["status"], status["added"], status["processed"], status["errors"]) == ("finished", 5, 5, [])
    assert _content(copy.id) == _content(dataset.id)
    assert len(_content(copy.id)) == 5


def test_a_dataset_named_in_another_script_exports_with_an_ascii_header(logged_in):
    """A WSGI server writes headers as latin-1 (gunicorn fails on anything else): the name goes in filename*."""
    from urllib.parse import quote

    from app.blueprints.datasets.services import create_dataset

    dataset = create_dataset(logged_in.user.id, "日本 データ")
    disposition = logged_in.get(f"/datasets/{dataset.id}/export").headers["Content-Disposition"]
    disposition.encode("latin-1")  # what gunicorn does with it
    assert disposition.endswith(f"filename*=UTF-8''{quote('日本_データ.zip')}")
