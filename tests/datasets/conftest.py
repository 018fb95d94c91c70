"""Fixtures for the datasets feature: a dataset owned by the logged-in user, upload and zip helpers."""
from __future__ import annotations

import io
import zipfile

import pytest

from tests.conftest import image_bytes, run_jobs


@pytest.fixture
def dataset(logged_in):
    """A dataset owned by 'alice' (the logged-in client's user)."""
    from app.blueprints.datasets.services import create_dataset

    return create_dataset(logged_in.user.id, "Ants and bees")


def upload(client, dataset_id: int, files: list[tuple[str, bytes]], json: bool = True, **kwargs):
    """POST files to the upload route (as the JS does: Accept JSON) and return the response."""
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    headers = {"Accept": "application/json"} if json else {}
    response = client.post(f"/datasets/{dataset_id}/upload", data=data, headers=headers,
                           content_type="multipart/form-data", **kwargs)
    response.request.environ["wsgi.input"].close()  # the test client spools bodies over 500 KB to a file
    return response


def make_zip(entries: dict[str, bytes], folders: bool = False) -> bytes:
    """A zip of `entries`; with folders=True it also has an entry per folder, as zip tools make them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if folders:
            for folder in sorted({name.rsplit("/", 1)[0] + "/" for name in entries if "/" in name}):
                zf.writestr(zipfile.ZipInfo(folder), b"")
        for name, content in entries.items():
            zf.writestr(zipfile.ZipInfo(name), content)
    return buf.getvalue()


def import_zip(client, dataset_id: int, archive: bytes, name: str = "import.zip") -> dict:
    """Upload a zip (answered 202 with a status URL), run its import job in a real burst worker, and
    return the import's final status document."""
    response = upload(client, dataset_id, [(name, archive)])
    assert response.status_code == 202, response.json
    run_jobs(client.application)
    status = client.get(response.json["import"]["status_url"])
    assert status.status_code == 200
    return status.json


def png(n: int, size=(24, 24), color=(30, 120, 200)) -> bytes:
    """A distinct small PNG (different bytes for every n)."""
    return image_bytes(color=color, size=size, noise=n + 1)


def expire_undo() -> int:
    """Let every undo offer run out now (as the worker's maintenance does once UNDO_SECONDS passed), so
    deleted images' files are removed."""
    from datetime import timedelta

    from app.blueprints.datasets.images.undo import expire
    from app.models import utcnow

    return expire(now=utcnow() + timedelta(days=1))
