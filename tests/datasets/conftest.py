"""Fixtures for the datasets feature: a dataset owned by the logged-in user, upload and zip helpers."""
from __future__ import annotations

import io
import zipfile

import pytest

from tests.conftest import image_bytes


@pytest.fixture
def dataset(logged_in):
    """A dataset owned by 'alice' (the logged-in client's user)."""
    from app.blueprints.datasets.services import create_dataset

    return create_dataset(logged_in.user.id, "Ants and bees")


def upload(client, dataset_id: int, files: list[tuple[str, bytes]], json: bool = True, **kwargs):
    """POST files to the upload route (as the JS does: Accept JSON) and return the response."""
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    headers = {"Accept": "application/json"} if json else {}
    return client.post(f"/datasets/{dataset_id}/upload", data=data, headers=headers,
                       content_type="multipart/form-data", **kwargs)


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            zf.writestr(zipfile.ZipInfo(name), content)
    return buf.getvalue()


def png(n: int, size=(24, 24), color=(30, 120, 200)) -> bytes:
    """A distinct small PNG (different bytes for every n)."""
    return image_bytes(color=color, size=size, noise=n + 1)
