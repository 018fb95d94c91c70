"""The migrations in migrations/ build exactly the schema the models describe, on SQLite and PostgreSQL."""
import os
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from app import create_app
from app.extensions import db

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _schema_diff(database_url: str, tmp_path) -> list:
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
            tables = set(sa.inspect(conn).get_table_names())
        db.engine.dispose()
    assert {"users", "datasets", "images", "training_runs", "alembic_version"} <= tables
    return diff


def test_migrations_match_models_on_sqlite(tmp_path):
    assert _schema_diff(f"sqlite:///{tmp_path / 'empty.sqlite3'}", tmp_path) == []


def _postgres_admin_engine():
    engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        engine.connect().close()
    except sa.exc.OperationalError:
        engine.dispose()
        if os.environ.get("CI_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES_ADMIN_URL}")
    return engine


def test_migrations_match_models_on_postgresql(tmp_path):
    admin = _postgres_admin_engine()
    name = f"studio_migrations_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        assert _schema_diff(url, tmp_path) == []
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
