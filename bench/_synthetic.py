"""Synthetic datasets written straight into the database, for page and query benchmarks (no image files:
the pages measured never open them). Call inside an app context of a throw-away database."""
from __future__ import annotations

CHUNK = 5000


def make_dataset(owner_username: str = "bench", classes: int = 10, name: str = "synthetic"):
    """A user (password 'correct horse battery') and an empty dataset with `classes` classes."""
    from app.blueprints.auth.services import register_user
    from app.extensions import db
    from app.models import Dataset, Label

    user = register_user(owner_username, "correct horse battery")
    dataset = Dataset(owner_id=user.id, name=name, description="")
    db.session.add(dataset)
    db.session.flush()
    db.session.add_all([Label(dataset_id=dataset.id, name=f"class{i}", position=i) for i in range(classes)])
    db.session.commit()
    return user, dataset


def fill_images(dataset_id: int, count: int, labelled_share: float = 1.0, start: int = 0) -> list[int]:
    """Insert `count` image rows (128 px JPEG metadata, fake sha256), spread over the dataset's classes;
    the first labelled_share of them labelled, the rest unlabeled. Commits every CHUNK rows.
    Returns the dataset's label ids."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Image, Label

    label_ids = list(db.session.scalars(select(Label.id).where(Label.dataset_id == dataset_id)
                                        .order_by(Label.position)))
    labelled = int(count * labelled_share)
    for first in range(0, count, CHUNK):
        rows = []
        for i in range(first, min(count, first + CHUNK)):
            label = label_ids[i % len(label_ids)] if i < labelled and label_ids else None
            rows.append({"dataset_id": dataset_id, "sha256": f"{dataset_id:08x}{start + i:056x}",
                         "label_id": label, "label_source": "user" if label else None,
                         "filename": f"img{start + i}.jpg", "width": 128, "height": 128, "size_bytes": 4000,
                         "format": "JPEG"})
        db.session.execute(Image.__table__.insert(), rows)
        db.session.commit()
    return label_ids
