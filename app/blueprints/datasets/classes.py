"""Classes (Label rows) of a dataset: add, rename, recolour, reorder, merge, delete."""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select, update
from flask_babel import gettext as _

from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import Image, Label

PALETTE = ("#4f7cff", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#f08c00", "#5c940d",
           "#d6336c", "#1971c2")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def get_label(dataset_id: int, label_id: int) -> Label:
    """A class of this dataset (404 for a class of another dataset)."""
    label = db.session.get(Label, label_id)
    if label is None or label.dataset_id != dataset_id:
        raise NotFound(_("This class does not exist in this dataset."))
    return label


def clean_class_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError(_("Give the class a name."))
    if len(name) > 80:
        raise ValidationError(_("Class names can be at most 80 characters long."))
    return name


def find_label(dataset_id: int, name: str) -> Label | None:
    """The class with this name, ignoring case ('Cats' and 'cats' are the same class)."""
    return db.session.scalar(
        select(Label).where(Label.dataset_id == dataset_id, func.lower(Label.name) == name.lower())
    )


def _new_label(dataset_id: int, name: str) -> Label:
    count = db.session.scalar(select(func.count(Label.id)).where(Label.dataset_id == dataset_id)) or 0
    top = db.session.scalar(select(func.max(Label.position)).where(Label.dataset_id == dataset_id))
    label = Label(dataset_id=dataset_id, name=name, color=PALETTE[count % len(PALETTE)],
                  position=(top or 0) + 1)
    db.session.add(label)
    db.session.flush()
    return label


def get_or_create_label(dataset_id: int, name: str) -> Label:
    """Find a class by name or add it (flushed, not committed — the caller commits)."""
    name = clean_class_name(name)
    return find_label(dataset_id, name) or _new_label(dataset_id, name)


def add_class(dataset_id: int, name: str, color: str | None = None) -> Label:
    """Add a class; a name already used (in any letter case) is a conflict."""
    name = clean_class_name(name)
    existing = find_label(dataset_id, name)
    if existing:  # named as it is spelled ("ants"), not as typed ("Ants")
        raise Conflict(_("There is already a class called “%(name)s”.", name=existing.name))
    label = _new_label(dataset_id, name)
    if color:
        label.color = _clean_color(color)
    db.session.commit()
    return label


def _clean_color(color: str) -> str:
    if not COLOR_RE.match(color or ""):
        raise ValidationError(_("Pick a colour like #4f7cff."))
    return color.lower()


def update_class(dataset_id: int, label_id: int, name: str, color: str | None = None) -> Label:
    """Rename and/or recolour a class."""
    label = get_label(dataset_id, label_id)
    name = clean_class_name(name)
    other = find_label(dataset_id, name)
    if other is not None and other.id != label.id:
        raise Conflict(_("There is already a class called “%(name)s”. To put the two classes together, merge "
                         "them instead.", name=other.name))
    label.name = name
    if color:
        label.color = _clean_color(color)
    db.session.commit()
    return label


def move_class(dataset_id: int, label_id: int, direction: str) -> None:
    """Move a class one place 'up' or 'down' in the order (this is also the order of shortcut keys)."""
    labels = list(db.session.scalars(
        select(Label).where(Label.dataset_id == dataset_id).order_by(Label.position, Label.id)
    ))
    index = next((i for i, lab in enumerate(labels) if lab.id == label_id), None)
    if index is None:
        raise NotFound(_("This class does not exist in this dataset."))
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(labels):
        labels[index], labels[other] = labels[other], labels[index]
    for position, lab in enumerate(labels, start=1):
        lab.position = position
    db.session.commit()


def delete_class(dataset_id: int, label_id: int, undoable_by: int | None = None) -> tuple[int, int | None]:
    """Delete a class; its images stay in the dataset, unlabeled. With undoable_by (a user id) that user
    can take it back for a while. Returns (how many were unlabeled, the undo action's id or None)."""
    from app.blueprints.datasets.images.undo import record_class

    label = get_label(dataset_id, label_id)
    action = record_class(dataset_id, undoable_by, label) if undoable_by is not None else None
    # Explicit (not ON DELETE SET NULL): SQLite does not enforce foreign keys here.
    result = db.session.execute(
        update(Image).where(Image.dataset_id == dataset_id, Image.label_id == label.id)
        .values(label_id=None, label_source=None, labeled_by_id=None, label_model_id=None)
    )
    db.session.delete(label)
    db.session.commit()
    return result.rowcount or 0, action.id if action else None


@dataclass(frozen=True)
class Merged:
    """What merge_class did: images moved from the class `name` (now deleted) into `into`, and the undo
    action's id (None when not undoable)."""

    moved: int
    undo_id: int | None
    name: str
    into: str


def merge_class(dataset_id: int, label_id: int | None, into_id: int | None,
                undoable_by: int | None = None) -> Merged:
    """Move every image of one class into another and delete the emptied class ("Ants" and "ant" imported
    from two folders are one class). Who labeled each image stays as it was. With undoable_by (a user id)
    that user can take it back for a while: the class returns with its images (those still in the class
    they were merged into). One UPDATE whatever the size."""
    from app.blueprints.datasets.images.undo import record_class

    if label_id is None or into_id is None:
        raise ValidationError(_("Pick the class to merge and the class it goes into."))
    label, into = get_label(dataset_id, label_id), get_label(dataset_id, into_id)
    if label.id == into.id:
        raise ValidationError(_("Pick two different classes to merge."))
    action = (record_class(dataset_id, undoable_by, label, merged_into=into)
              if undoable_by is not None else None)
    result = db.session.execute(update(Image).where(Image.dataset_id == dataset_id, Image.label_id == label.id)
                                .values(label_id=into.id))
    name = label.name
    db.session.delete(label)
    db.session.commit()
    return Merged(result.rowcount or 0, action.id if action else None, name, into.name)


def _luminance(color: str) -> float:
    channels = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ink(color: str | None) -> str:
    """Text colour readable on a class colour: white or black, whichever contrasts more (for any colour
    one of them reaches 4.5:1)."""
    if not color or len(color) != 7 or not color.startswith("#"):
        return "#fff"
    try:
        luminance = _luminance(color)
    except ValueError:
        return "#fff"
    return "#fff" if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 else "#000"
