"""The migrations in migrations/ build exactly the schema the models describe, on SQLite and PostgreSQL."""
import json
import os
import uuid
from datetime import datetime

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


OLD_SAMPLES = [[10 + i, i % 2, f"{i:064x}"] for i in range(10)]
OLD_SPLIT = {"train": [0, 1, 2, 3, 4, 5], "val": [6, 7], "test": [8, 9]}
OLD_PREDICTIONS = [{"image_id": 18, "true": 0, "predicted": 0, "confidence": 0.9},
                   {"image_id": 19, "true": 1, "predicted": 0, "confidence": 0.6}]


def _old_rows(conn) -> None:
    """Rows as the previous schema stored them: the sample list and split inside the run's snapshot,
    the per-image predictions inside its metrics; an image labelled by that run (a foreign key)."""
    t = {name: sa.table(name, *[sa.column(c) for c in cols]) for name, cols in {
        "users": ("id", "username", "password_hash", "is_admin", "is_disabled", "failed_logins", "created_at"),
        "datasets": ("id", "owner_id", "name", "description", "created_at", "updated_at"),
        "labels": ("id", "dataset_id", "name", "color", "position"),
        "images": ("id", "dataset_id", "sha256", "label_id", "filename", "width", "height", "size_bytes", "format",
                   "created_at", "label_model_id"),
    }.items()}
    now = sa.func.now()
    conn.execute(t["users"].insert().values(id=1, username="a", password_hash="x", is_admin=False, is_disabled=False,
                                            failed_logins=0, created_at=now))
    conn.execute(t["datasets"].insert().values(id=1, owner_id=1, name="d", description="", created_at=now,
                                               updated_at=now))
    conn.execute(t["labels"].insert().values(id=1, dataset_id=1, name="ants", color="#000000", position=0))
    runs = sa.table("training_runs", *[sa.column(c) for c in (
        "id", "dataset_id", "name", "architecture", "mode", "status", "cancel_requested", "created_at",
        "is_public")], sa.column("options", sa.JSON), sa.column("progress", sa.JSON), sa.column("history", sa.JSON),
        sa.column("metrics", sa.JSON), sa.column("snapshot", sa.JSON), sa.column("classes", sa.JSON),
        sa.column("log", sa.JSON))
    conn.execute(runs.insert().values(
        id=7, dataset_id=1, name="old", architecture="small_cnn", mode="scratch", status="succeeded",
        cancel_requested=False, created_at=now, is_public=False, options={}, progress={}, history=[], log=[],
        classes=["ants", "bees"],
        metrics={"accuracy": 0.5, "predictions": OLD_PREDICTIONS, "misclassified": [{"image_id": 19}] * 60},
        snapshot={"classes": ["ants", "bees"], "samples": OLD_SAMPLES, "split": OLD_SPLIT, "taken_at": "then"}))
    conn.execute(t["images"].insert().values(id=10, dataset_id=1, sha256="a" * 64, label_id=1, filename="",
                                             width=0, height=0, size_bytes=0, format="", created_at=now,
                                             label_model_id=7))


def _moves_old_snapshots(database_url: str, tmp_path) -> None:
    from flask_migrate import downgrade

    from app.blueprints.training import samples
    from app.blueprints.training.thresholds import curve_grid
    from app.models import Image, TrainingRun

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})
    with app.app_context():
        upgrade(revision="b7e41c2d9a10")
        with db.engine.begin() as conn:
            _old_rows(conn)
        upgrade()
        run = db.session.get(TrainingRun, 7)
        rows, split = samples.load(7)
        assert [list(r) for r in rows] == OLD_SAMPLES and split == OLD_SPLIT
        assert run.snapshot == {"classes": ["ants", "bees"], "taken_at": "then", "total": 10,
                                "counts": [[3, 1, 1], [3, 1, 1]]}
        assert run.test_predictions == OLD_PREDICTIONS and run.threshold_curve == curve_grid(OLD_PREDICTIONS)
        assert "predictions" not in run.metrics and run.metrics["misclassified_count"] == 1  # counted in full
        assert len(run.metrics["misclassified"]) == 48 and run.metrics["accuracy"] == 0.5
        assert db.session.get(Image, 10).label_model_id == 7  # no ON DELETE action ran while migrating
        db.session.remove()
        downgrade(revision="b7e41c2d9a10")
        with db.engine.connect() as conn:
            snapshot, metrics = conn.execute(sa.text("SELECT snapshot, metrics FROM training_runs")).one()
            # downgrading rebuilds training_runs on SQLite: with foreign keys on, that would null this
            assert conn.execute(sa.text("SELECT label_model_id FROM images")).scalar() == 7
        snapshot, metrics = (v if isinstance(v, dict) else json.loads(v) for v in (snapshot, metrics))
        assert snapshot["samples"] == OLD_SAMPLES and snapshot["split"] == OLD_SPLIT
        assert metrics["predictions"] == OLD_PREDICTIONS
        db.engine.dispose()


def test_migration_moves_old_snapshots_on_sqlite(tmp_path):
    _moves_old_snapshots(f"sqlite:///{tmp_path / 'old.sqlite3'}", tmp_path)


def test_migration_moves_old_snapshots_on_postgresql(tmp_path):
    admin = _postgres_admin_engine()
    name = f"studio_migrations_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        _moves_old_snapshots(admin.url.set(database=name).render_as_string(hide_password=False), tmp_path)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fills_filename_keys(database_url: str, tmp_path) -> None:
    """Images stored before find-by-name get their name key (case-folded, not only ASCII) when migrating,
    and a search finds them; downgrading drops the column and its index again."""
    from flask_migrate import downgrade

    from app.blueprints.datasets.images.services import image_page

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})
    names = ["Ant_01.PNG", "ÉTÉ.jpg", "bee.png"]
    with app.app_context():
        upgrade(revision="d2b8f4a61e93")
        with db.engine.begin() as conn:
            _old_rows(conn)  # image 10, named ""
            images = sa.table("images", *[sa.column(c) for c in ("id", "dataset_id", "sha256", "filename", "width",
                                                                  "height", "size_bytes", "format", "created_at")])
            conn.execute(images.insert(), [{"id": 11 + i, "dataset_id": 1, "sha256": f"{i:064x}", "filename": name,
                                            "width": 0, "height": 0, "size_bytes": 0, "format": "",
                                            "created_at": datetime(2027, 1, 1)} for i, name in enumerate(names)])
        upgrade()
        with db.engine.connect() as conn:
            keys = dict(conn.execute(sa.text("SELECT id, filename_key FROM images ORDER BY id")).all())
        assert keys == {10: "", 11: "ant_01.png", 12: "été.jpg", 13: "bee.png"}
        assert [i.filename for i in image_page(1, q="été").images] == ["ÉTÉ.jpg"]
        assert [i.filename for i in image_page(1, q="_0").images] == ["Ant_01.PNG"]
        db.session.remove()
        downgrade(revision="d2b8f4a61e93")
        with db.engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "filename_key" not in {c["name"] for c in inspector.get_columns("images")}
            assert "ix_images_dataset_label_name" not in {i["name"] for i in inspector.get_indexes("images")}
        db.engine.dispose()


def test_migration_fills_filename_keys_on_sqlite(tmp_path):
    _fills_filename_keys(f"sqlite:///{tmp_path / 'keys.sqlite3'}", tmp_path)


def test_migration_fills_filename_keys_on_postgresql(tmp_path):
    admin = _postgres_admin_engine()
    name = f"studio_migrations_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        _fills_filename_keys(admin.url.set(database=name).render_as_string(hide_password=False), tmp_path)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
