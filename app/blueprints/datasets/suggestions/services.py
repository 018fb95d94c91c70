"""Label suggestions: pick a trained model, queue the job, read its results, accept them.

Results live in one JSON file per dataset, get_storage().root / "suggestions" / "<dataset_id>.json":
{status: queued|running|done|failed, job_id, model_id, model_name, requested_by_id, created,
 finished, error, method, seconds, unreadable, suggestions: [{image_id, label, confidence, margin}]}.
The file is rewritten whole (write_atomic) by the web request that queues a job and by that job.

Classes are matched by name (ignoring case). When the model's class no longer exists in the dataset
(renamed or deleted since training) its suggestions are NOT accepted and the user is told so:
re-creating a class the user deliberately removed or renamed would undo their decision.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update

from app.blueprints.datasets.classes import find_label
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db, get_queue
from app.models import Image, Label, TrainingRun
from app.storage import get_storage
from app.jobs.queue import DEAD_JOB_STATUSES, job_status

log = logging.getLogger(__name__)

JOB_TIMEOUT_S = 3600
RESULT_TTL_S = 24 * 3600
ENQUEUE_GRACE_S = 10  # the state file is written just before the job is queued
ACTIVE = ("queued", "running")
GROUP_SHOW = 120      # tiles shown per class; "accept all" still covers the whole group
LOST_JOB = "The suggestion job stopped unexpectedly (the worker was restarted or ran out of memory). Try again."


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- the state file -----------------------------------------------------------------------------

def state_path(dataset_id: int):
    return get_storage().root / "suggestions" / f"{int(dataset_id)}.json"


def save_state(dataset_id: int, state: dict) -> None:
    """Replace the dataset's suggestion file in one atomic rename."""
    get_storage().write_atomic(state_path(dataset_id), json.dumps(state).encode("utf-8"))


def read_state(dataset_id: int) -> dict | None:
    """The stored file as is (None when there is none or it is unreadable)."""
    try:
        return json.loads(state_path(dataset_id).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _job_alive(job_id: str | None) -> bool:
    return job_status(job_id) not in DEAD_JOB_STATUSES


def load_state(dataset_id: int) -> dict | None:
    """The suggestion state, with a queued/running job whose RQ job is gone reported as failed."""
    state = read_state(dataset_id)
    if state and state.get("status") in ACTIVE and not _job_alive(state.get("job_id")):
        created = datetime.fromisoformat(state.get("created") or now_iso())
        if datetime.now(timezone.utc) - created > timedelta(seconds=ENQUEUE_GRACE_S):
            state.update(status="failed", error=LOST_JOB, finished=now_iso())
            save_state(dataset_id, state)
    return state


# --- models and queueing ------------------------------------------------------------------------

def usable_models(dataset_id: int) -> list[TrainingRun]:
    """Succeeded runs of this dataset that still have their files, newest first."""
    runs = db.session.scalars(select(TrainingRun).where(
        TrainingRun.dataset_id == dataset_id, TrainingRun.status == "succeeded",
        TrainingRun.artifact_dir.is_not(None)).order_by(TrainingRun.id.desc()))
    return [r for r in runs if r.artifact_dir]


def choose_model(dataset_id: int, model_id: int | None) -> TrainingRun:
    """The requested model of this dataset, or the newest usable one when none is given."""
    models = usable_models(dataset_id)
    if not models:
        raise ValidationError("Train a model on this dataset first; suggestions come from a trained model.")
    if model_id is None:
        return models[0]
    for run in models:
        if run.id == model_id:
            return run
    raise NotFound("This model does not exist for this dataset, or it has not finished training.")


def unlabeled_images(dataset_id: int) -> list[tuple[int, str]]:
    """(image id, sha256) of the dataset's unlabeled images, oldest first."""
    rows = db.session.execute(select(Image.id, Image.sha256).where(
        Image.dataset_id == dataset_id, Image.label_id.is_(None)).order_by(Image.id))
    return [(int(i), str(s)) for i, s in rows]


def request_suggestions(dataset_id: int, model_id: int | None, user_id: int) -> dict:
    """Queue a suggestion job for the dataset's unlabeled images; returns the new state."""
    run = choose_model(dataset_id, model_id)
    current = load_state(dataset_id)
    if current and current.get("status") in ACTIVE:
        raise Conflict("Suggestions are already being computed for this dataset. Wait for them to finish.")
    if not db.session.scalar(select(func.count(Image.id)).where(
            Image.dataset_id == dataset_id, Image.label_id.is_(None))):
        raise ValidationError("Every image of this dataset already has a class; there is nothing to suggest.")
    job_id = f"suggest-{dataset_id}-{uuid.uuid4().hex[:8]}"
    state = {"status": "queued", "job_id": job_id, "model_id": run.id, "model_name": run.name,
             "requested_by_id": user_id, "created": now_iso(), "finished": None, "error": None,
             "suggestions": []}
    save_state(dataset_id, state)
    # by name, so this module does not import the job module (which imports this one)
    get_queue().enqueue("app.jobs.suggestions.suggest_labels", dataset_id, run.id, job_id,
                        job_id=job_id, job_timeout=JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S,
                        failure_ttl=RESULT_TTL_S, description=f"suggest labels for dataset {dataset_id}")
    return state


# --- reading results ----------------------------------------------------------------------------

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
    db.session.commit()
    return result
