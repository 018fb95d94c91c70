"""Fixtures for the storage tests: apps whose files live in a bucket of a real S3 API (moto's server)."""
from __future__ import annotations

import pytest

from tests.conftest import s3_settings


@pytest.fixture
def app_config(s3_endpoint) -> dict:
    """Every app of these tests keeps its files in the session's bucket, under a prefix of its own."""
    return s3_settings(s3_endpoint)
