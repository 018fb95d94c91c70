"""Rows and service results as the plain dicts the output schemas dump (the API's 'serialise' step)."""
from __future__ import annotations

from flask import url_for

from app.access import dataset_role, roles_for
from app.blueprints.datasets.images.imports import import_json
from app.blueprints.datasets.readiness import missing_for_training
from app.blueprints.datasets.services import dataset_overview
from app.models import Dataset, Import, TrainingRun, User

PROGRESS_KEYS = ("phase", "message", "epoch", "epochs", "eta_seconds", "images_per_sec", "loss", "train_acc",
                 "val_acc")


def dataset(row: Dataset, role: str, images: int) -> dict:
    return {"id": row.id, "name": row.name, "description": row.description, "owner": row.owner.username,
            "role": role, "images": images, "created_at": row.created_at, "updated_at": row.updated_at}


def dataset_list(user: User, rows: list[dict]) -> dict:
    """list_datasets_for's rows, each with the caller's role (one query for all)."""
    roles = roles_for(user, [r["dataset"].id for r in rows])
    return {"datasets": [dataset(r["dataset"], roles[r["dataset"].id], r["images"]) for r in rows]}


def classes(counts: list[dict]) -> list[dict]:
    return [{"id": c["label"].id, "name": c["label"].name, "color": c["label"].color,
             "position": c["label"].position, "images": c["count"]} for c in counts]


def dataset_detail(user: User, row: Dataset) -> dict:
    """The dataset with its classes, counts, what stops training, advice and imports (what its page shows)."""
    overview = dataset_overview(row)
    summary = overview["summary"]
    return {**dataset(row, dataset_role(user, row), summary.total), "classes": classes(summary.classes),
            "unlabeled": summary.unlabeled, "missing": [m.text for m in missing_for_training(row.id)],
            "warnings": summary.warnings, "imports": [import_doc(imp) for imp in overview["imports"]]}


def import_doc(imp: Import) -> dict:
    """The imports' status document (as the pages' status URL serves it), with the API's own URLs."""
    doc = import_json(imp)
    doc["status_url"] = url_for("api.get_import", dataset_id=imp.dataset_id, import_id=imp.id)
    if "cancel_url" in doc:
        doc["cancel_url"] = url_for("api.cancel_import", dataset_id=imp.dataset_id, import_id=imp.id)
    return doc


def progress(run: TrainingRun) -> dict:
    """The live progress numbers, every key present (null until the run reports it)."""
    raw = run.progress or {}
    values = {key: raw.get(key) for key in PROGRESS_KEYS}
    values["fraction"] = max(0.0, min(1.0, float(raw.get("fraction") or 0.0)))
    return values


def _accuracy(run: TrainingRun) -> float | None:
    return (run.metrics or {}).get("accuracy") if run.status == "succeeded" else None


def run_summary(run: TrainingRun) -> dict:
    """A run as lists show it (no progress: lists do not read the polled columns)."""
    from app.ml.artifacts import DOWNLOADS

    downloads = {kind: url_for("api.download_file", run_id=run.id, kind=kind) for kind in DOWNLOADS} \
        if run.status == "succeeded" else {}
    return {"id": run.id, "name": run.name, "dataset_id": run.dataset_id, "status": run.status,
            "finished": run.finished, "architecture": run.architecture, "mode": run.mode,
            "options": run.options or {}, "classes": list(run.classes or []), "accuracy": _accuracy(run),
            "error": run.error, "cancel_requested": run.cancel_requested, "public": run.is_public,
            "threshold": run.threshold, "created_at": run.created_at, "started_at": run.started_at,
            "finished_at": run.finished_at, "downloads": downloads}


def run_detail(run: TrainingRun) -> dict:
    """A run with its live progress and place in the queue."""
    from app.blueprints.training.lifecycle import queue_position

    try:
        position = queue_position(run)
    except Exception:  # Redis briefly away: the answer still comes, without the position
        position = None
    return {**run_summary(run), "progress": progress(run), "queue_position": position}


def metrics(run: TrainingRun) -> dict:
    values = run.metrics or {}
    return {"accuracy": values.get("accuracy"), "macro_f1": values.get("macro_f1"), "count": values.get("count"),
            "classes": list(run.classes or []), "confusion_matrix": values.get("confusion_matrix") or [],
            "per_class": values.get("per_class") or [], "misclassified": values.get("misclassified") or [],
            "head_choice": values.get("head_choice")}


def model(run: TrainingRun, user: User | None, site_default: int | None) -> dict:
    return {"id": run.id, "name": run.name, "dataset_id": run.dataset_id, "architecture": run.architecture,
            "classes": list(run.classes or []), "accuracy": _accuracy(run), "public": run.is_public,
            "default": user is not None and user.default_model_id == run.id, "site_default": site_default == run.id,
            "created_at": run.created_at, "predict_url": url_for("predict.predict_with_model", run_id=run.id)}


def me(user: User) -> dict:
    return {"id": user.id, "username": user.username, "is_admin": user.is_admin,
            "default_model_id": user.default_model_id}
