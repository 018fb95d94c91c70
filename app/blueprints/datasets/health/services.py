"""Dataset health, the database side: the stored state of a dataset's checks, queueing a check, keeping
its progress and report, showing the report and applying the one-click fixes. The check itself (torch)
is in checks.py, which only the health job loads.

Everything about one dataset's health lives in one JSON document, JobState("health", dataset_id)
(the storage key health/<id>.json, app.jobs.state):
{"state": "idle|queued|running|done|failed", "job_id", "message", "fraction", "error",
 "report": {"created", "image_count", "findings": [...]} (the last finished check), "ignored": [keys]}.
A finding: {"key" (stable across checks, so "ignore" sticks), "kind", "images": [image ids], ...}.
"""
from __future__ import annotations

import time
from typing import Callable

from sqlalchemy import select
from flask_babel import gettext as _

from app.access import shown_runs
from app.i18n import N_
from app.blueprints.datasets.images.services import delete_undoably, label_undoably
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.jobs import HEALTH, JobState, enqueue, job_alive, new_job_id
from app.models import Dataset, Image, Label, TrainingRun

PROGRESS_EVERY_S = 0.5
ACTIVE = ("queued", "running")
DEAD_JOB_MESSAGE = N_("The health check stopped unexpectedly (the worker was restarted or the job was lost). "
                      "Run it again.")  # stored English, shown translated (|tr)


# --- the stored state ---------------------------------------------------------------------

def _stamp(dataset_id: int) -> str | None:
    created = db.session.scalar(select(Dataset.created_at).where(Dataset.id == dataset_id))
    return created.isoformat() if created else None


def _with_defaults(dataset_id: int) -> Callable[[dict], dict]:
    """Turns a stored document into the dataset's state: defaults filled, a stale one dropped."""
    def prepare(state: dict) -> dict:
        stamp = _stamp(dataset_id)
        if state.get("dataset_created") != stamp:  # a file left by a deleted dataset whose id was reused
            state = {"dataset_created": stamp}
        state.setdefault("state", "idle")
        state.setdefault("report", None)
        state.setdefault("ignored", [])
        return state

    return prepare


def load_health(dataset_id: int) -> dict:
    """The stored health state of a dataset (an empty 'idle' one when there is none)."""
    return _with_defaults(dataset_id)(JobState("health", dataset_id).read())


def update_health(dataset_id: int, change: Callable[[dict], None]) -> dict:
    """Apply `change` to the stored state under the lock and write it back atomically."""
    return JobState("health", dataset_id).update(change, prepare=_with_defaults(dataset_id))


def remove_health(dataset_id: int) -> None:
    """Forget a dataset's health report (e.g. when the dataset is deleted)."""
    JobState("health", dataset_id).remove()


def current_state(dataset_id: int) -> dict:
    """The stored state, with a queued/running check whose job has died shown as failed."""
    state = load_health(dataset_id)
    if state["state"] in ACTIVE and not job_alive(state.get("job_id")):
        state.update(state="failed", error=DEAD_JOB_MESSAGE)
    return state


# --- running a check ----------------------------------------------------------------------

def start_health_check(dataset_id: int) -> dict:
    """Queue a health check of the dataset; Conflict when one is already under way."""
    if not db.session.scalar(select(Image.id).where(Image.dataset_id == dataset_id).limit(1)):
        raise ValidationError(_("This dataset has no images yet, so there is nothing to check."))
    job_id = new_job_id(HEALTH, dataset_id)

    def queue(state: dict) -> None:
        if state["state"] in ACTIVE and job_alive(state.get("job_id")):
            raise Conflict(_("A health check of this dataset is already running."))
        state.update(state="queued", job_id=job_id, message=N_("Waiting for a free worker…"), fraction=0.0,
                     error=None)

    state = update_health(dataset_id, queue)
    try:
        enqueue(HEALTH, dataset_id, job_id=job_id, description=f"dataset health {dataset_id}")
    except Exception:
        update_health(dataset_id, lambda s: s.update(state="failed", error=N_("The check could not be queued.")))
        raise
    return state


class Progress:
    """The check's progress callback: writes 'running' + a plain message (N_-marked text or a stored_line),
    at most every PROGRESS_EVERY_S."""

    def __init__(self, dataset_id: int):
        self.dataset_id = dataset_id
        self.last = 0.0

    def __call__(self, message: str | dict, fraction: float, force: bool = False) -> None:
        if force or time.monotonic() - self.last >= PROGRESS_EVERY_S:
            self.last = time.monotonic()
            update_health(self.dataset_id, lambda s: s.update(state="running", message=message,
                                                               fraction=round(fraction, 3)))


def store_report(dataset_id: int, report: dict) -> None:
    """Keep a finished check's report as the dataset's current one."""
    update_health(dataset_id, lambda s: s.update(state="done", report=report, message=None, fraction=1.0,
                                                 error=None))


UNEXPECTED = N_("The health check stopped because of an unexpected problem on the server. Try again; if it "
                "happens again, tell an administrator (the worker's log has the details).")


def record_failure(dataset_id: int, exc: Exception) -> None:
    """Mark the check failed, saying why in one line the page shows in the reader's language: the ML
    library's own reason, else a plain sentence (the exception's text can name server internals; the
    worker's log has it)."""
    from app.ml.errors import MLError

    db.session.rollback()
    error = (exc.line or exc.message) if isinstance(exc, MLError) else UNEXPECTED
    update_health(dataset_id, lambda s: s.update(state="failed", error=error))


# --- showing the report -------------------------------------------------------------------

ORDER = ("leakage", "label_error", "duplicate", "corrupt", "tiny", "small_class", "imbalance")


def _still_relevant(finding: dict, images: dict, labels: dict, run_ids: set) -> bool:
    """Hide findings the dataset has moved past: images deleted, label changed, class or model gone."""
    present = [i for i in finding["images"] if i in images]
    kind = finding["kind"]
    if kind == "duplicate":
        return len(present) >= 2
    if kind in ("corrupt", "tiny"):
        return bool(present)
    if kind == "label_error":
        return bool(present) and images[present[0]].label_id == finding["given_label_id"] \
            and finding["suggested_label_id"] in labels
    if kind == "leakage":
        return finding["run_id"] in run_ids
    if kind == "small_class":
        return finding["label_id"] in labels
    return True


def visible_findings(dataset_id: int, state: dict) -> tuple[list[dict], dict, dict]:
    """(findings still worth showing, not ignored, in ORDER; {image id: Image}; {label id: Label})."""
    report = state.get("report") or {}
    findings = [f for f in report.get("findings", []) if f["key"] not in set(state.get("ignored", []))]
    wanted = {i for f in findings for i in f["images"]}
    images = {img.id: img for img in db.session.scalars(
        select(Image).where(Image.dataset_id == dataset_id, Image.id.in_(wanted)))} if wanted else {}
    labels = {lab.id: lab for lab in db.session.scalars(select(Label).where(Label.dataset_id == dataset_id))}
    run_ids = set(db.session.scalars(select(TrainingRun.id).where(TrainingRun.dataset_id == dataset_id,
                                                                  shown_runs())))
    shown = [f for f in findings if _still_relevant(f, images, labels, run_ids)]
    shown.sort(key=lambda f: ORDER.index(f["kind"]) if f["kind"] in ORDER else len(ORDER))
    return shown, images, labels


def health_page(dataset_id: int) -> dict:
    """Everything the health page shows: the state, the visible findings, images and classes by id."""
    state = current_state(dataset_id)
    findings, images, labels = visible_findings(dataset_id, state)
    return {"health": state, "findings": findings, "images": images, "labels": labels,
            "running": state["state"] in ACTIVE, "ignored_count": len(state.get("ignored", []))}


# --- one-click fixes ----------------------------------------------------------------------

FIXES = {"remove": ("duplicate", "corrupt", "tiny"), "relabel": ("label_error",), "ignore": None}


def apply_fix(dataset_id: int, key: str, action: str, image_id: int | None, user_id: int) -> tuple[str, int | None]:
    """Apply a fix to a shown finding; returns a plain sentence saying what happened and the id that
    undoes it (None for 'ignore')."""
    if action not in FIXES:
        raise ValidationError(_("Unknown fix. Reload the page and try again."))
    findings, images, _ignored = visible_findings(dataset_id, current_state(dataset_id))
    finding = next((f for f in findings if f["key"] == key), None)
    if finding is None:
        raise NotFound(_("This finding is no longer there: the dataset changed since. Reload the page."))
    if FIXES[action] is not None and finding["kind"] not in FIXES[action]:
        raise ValidationError(_("That fix does not apply to this finding."))
    if action == "ignore":
        update_health(dataset_id, lambda s: s.update(ignored=sorted(set(s["ignored"]) | {key})))
        return _("Hidden. It will not be shown again."), None
    if action == "relabel":
        _count, undo_id = label_undoably(dataset_id, finding["images"][:1], finding["suggested_label_id"], user_id)
        return _("Label changed."), undo_id
    if image_id not in finding["images"] or image_id not in images:
        raise ValidationError(_("Choose one of the images of this finding to remove."))
    _count, undo_id = delete_undoably(dataset_id, [image_id], user_id)
    return _("Image removed from the dataset."), undo_id
