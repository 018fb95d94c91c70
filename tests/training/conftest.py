"""Fixtures for the training pages: a dataset with generated images written straight to storage."""
from __future__ import annotations

import hashlib
from contextlib import contextmanager

import pytest

from tests.conftest import image_bytes

RED, BLUE = (220, 30, 30), (30, 30, 220)

# A scratch run that takes a second or two on CPU.
TINY = {"name": "tiny", "architecture": "small_cnn", "mode": "scratch", "epochs": "2", "batch_size": "8",
        "image_size": "32", "optimizer": "adamw", "backbone_lr_factor": "0.1", "weight_decay": "0.0001",
        "momentum": "0.9", "schedule": "cosine", "step_size": "5", "gamma": "0.1", "label_smoothing": "0.1",
        "early_stopping_patience": "10", "val_fraction": "0.2", "test_fraction": "0.2", "seed": "0",
        "head": "linear", "dropout": "0.2", "hflip": "y", "random_resized_crop": "y"}


@pytest.fixture
def make_dataset(app):
    """make_dataset(owner, {"red": 6, "blue": 6}) -> Dataset with labelled generated images."""
    from app.extensions import db
    from app.models import Dataset, Image, Label
    from app.filestore import image_key
    from app.storage import get_storage

    colors = {"red": RED, "blue": BLUE}

    def factory(owner, per_class=None, name="Colours", size=(32, 32)):
        per_class = per_class if per_class is not None else {"red": 6, "blue": 6}
        dataset = Dataset(owner_id=owner.id, name=name, description="")
        db.session.add(dataset)
        db.session.flush()
        storage = get_storage()
        for position, (label_name, count) in enumerate(per_class.items()):
            label = Label(dataset_id=dataset.id, name=label_name, position=position)
            db.session.add(label)
            db.session.flush()
            base = colors.get(label_name, (30 + 40 * position, 200, 30))
            for i in range(count):
                data = image_bytes(base, size=size, noise=i + 1 + 1000 * position)
                sha = hashlib.sha256(data).hexdigest()
                storage.write(image_key(sha), data)
                db.session.add(Image(dataset_id=dataset.id, sha256=sha, label_id=label.id, filename=f"{label_name}{i}.png",
                                     width=size[0], height=size[1], size_bytes=len(data), format="PNG",
                                     uploaded_by_id=owner.id, label_source="user"))
        db.session.commit()
        return dataset

    return factory


@pytest.fixture
def start_run(logged_in):
    """POST the form as the logged-in user; returns the response."""
    def post(dataset_id, **changes):
        data = {**TINY, **changes}
        data = {k: v for k, v in data.items() if v is not None}
        return logged_in.post(f"/datasets/{dataset_id}/train", data=data)

    return post


@contextmanager
def recorded_sql():
    """Collect the SQL statements the app sends while the block runs."""
    from sqlalchemy import event

    from app.extensions import db

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


@pytest.fixture
def pretend_translated(app):
    """pretend_translated("pt_BR", {msgid: text}): the language's loaded catalog holds these translations
    until the test ends. For text new enough that the catalogs do not have it yet: a page that shows it
    through gettext then shows the translation, and one that prints it as it is still shows English."""
    from flask_babel import force_locale, get_translations

    changed = []

    def add(lang: str, texts: dict[str, str]) -> None:
        with app.test_request_context(), force_locale(lang):
            catalog = get_translations()._catalog  # the cached object every request of `lang` reads
        for msgid, text in texts.items():
            changed.append((catalog, msgid, catalog.get(msgid)))
            catalog[msgid] = text

    yield add
    for catalog, msgid, before in reversed(changed):
        if before is None:
            catalog.pop(msgid, None)
        else:
            catalog[msgid] = before
