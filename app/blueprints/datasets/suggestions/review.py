"""Reviewing finished suggestions: pending ones grouped by suggested class, and accepting them.

Classes are matched by name (ignoring case). When the model's class no longer exists in the dataset
(renamed or deleted since training) its suggestions are NOT accepted and the user is told so:
re-creating a class the user deliberately removed or renamed would undo their decision.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import update

from app.blueprints.datasets.classes import find_label
from app.blueprints.datasets.images import undo
from app.blueprints.datasets.suggestions.services import read_state, unlabeled_images
from app.errors import Conflict, ValidationError
from app.extensions import db
from app.models import Image, Label, TrainingRun

GROUP_SHOW = 120      # tiles shown per class; "accept all" still covers the whole group


@dataclass
class Group:
    """The pending suggestions for one class, most uncertain (smallest margin) first."""

    name: str
    label: Label | None
    items: list[dict] = field(default_factory=list)

    @property
    def shown(self) -> list[dict]:
        return self.items[:GROUP_SHOW]


def pending_groups(dataset_id: int, state: dict | None) -> list[Group]:
    """Suggestions for images that still exist and are still unlabeled, grouped by suggested class."""
    if not state or state.get("status") != "done":
        return []
    still = {i for i, _ in unlabeled_images(dataset_id)}
    groups: dict[str, Group] = {}
    for item in state.get("suggestions", []):
        if item["image_id"] in still:
            if item["label"] not in groups:
                groups[item["label"]] = Group(item["label"], find_label(dataset_id, item["label"]))
            groups[item["label"]].items.append(item)
    for group in groups.values():
        group.items.sort(key=lambda s: (s["margin"], s["image_id"]))
    return sorted(groups.values(), key=lambda g: (g.label is None, g.label.position if g.label else 0, g.name))


# --- accepting ----------------------------------------------------------------------------------

@dataclass
class Accepted:
    accepted: int = 0
    skipped: int = 0        # already labeled, deleted, or not among the suggestions
    no_class: list[str] = field(default_factory=list)
    undo_id: int | None = None  # takes the accepted labels back (a while)

    def message(self) -> str:
        parts = [f"{self.accepted} suggestion{'s' if self.accepted != 1 else ''} accepted."]
        if self.skipped:
            parts.append(f"{self.skipped} image{'s were' if self.skipped != 1 else ' was'} skipped because "
                         "it already has a class or is no longer suggested.")
        if self.no_class:
            parts.append("Not accepted: the class " + ", ".join(f"'{n}'" for n in self.no_class)
                         + " no longer exists in this dataset (renamed or deleted). Label those images by hand.")
        return " ".join(parts)


def accept_suggestions(dataset_id: int, user_id: int, image_ids: list[int] | None = None,
                       group: str | None = None) -> Accepted:
    """Give images their suggested class (a whole group, or the chosen ids). Only images of this
    dataset that are still unlabeled change; each is recorded as a suggestion from the model."""
    state = read_state(dataset_id)
    if not state or state.get("status") != "done":
        raise Conflict("There are no finished suggestions to accept. Ask for suggestions first.")
    suggestions = state.get("suggestions", [])
    if group is not None:
        picked = [s for s in suggestions if s["label"] == group]
        if not picked:
            raise ValidationError("There are no suggestions for this class.")
    else:
        wanted = set(image_ids or [])
        picked = [s for s in suggestions if s["image_id"] in wanted]
    result = Accepted(skipped=len(set(image_ids or [])) - len(picked) if group is None else 0)
    model_id = state["model_id"] if db.session.get(TrainingRun, state["model_id"]) else None
    action = undo.record_labels(dataset_id, user_id, [s["image_id"] for s in picked]) if picked else None
    by_class: dict[str, list[int]] = {}
    for s in picked:
        by_class.setdefault(s["label"], []).append(s["image_id"])
    for name, ids in by_class.items():
        label = find_label(dataset_id, name)
        if label is None:
            result.no_class.append(name)
            continue
        changed = db.session.execute(update(Image).where(
            Image.dataset_id == dataset_id, Image.id.in_(ids), Image.label_id.is_(None)).values(
            label_id=label.id, label_source="suggestion", labeled_by_id=user_id, label_model_id=model_id))
        result.accepted += changed.rowcount or 0
        if group is None:  # a whole group quietly leaves out images labeled by hand meanwhile
            result.skipped += len(ids) - (changed.rowcount or 0)
    if action is not None and not result.accepted:
        db.session.delete(action)  # nothing changed: nothing to undo
    result.undo_id = action.id if action is not None and result.accepted else None
    db.session.commit()
    return result
