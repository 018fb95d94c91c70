"""Dataset health, the database side: gather a dataset's images and runs, call app.ml.health,
keep the report, and apply the one-click fixes.

Everything about one dataset's health lives in one JSON file, get_storage().root/health/<id>.json:
{"state": "idle|queued|running|done|failed", "job_id", "message", "fraction", "error",
 "report": {"created", "image_count", "findings": [...]} (the last finished check), "ignored": [keys]}.
A finding: {"key" (stable across checks, so "ignore" sticks), "kind", "images": [image ids], ...}.
Read-modify-write of that file happens under a short Redis lock (job progress vs. user fixes).
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from flask import current_app
from sqlalchemy import select

from app.blueprints.datasets.images.services import delete_images, set_labels
from app.blueprints.datasets.services import IMBALANCE_RATIO, MIN_IMAGES_PER_CLASS, class_counts
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db, get_redis
from app.ml import health as mlh
from app.models import Dataset, Image, Label, TrainingRun, utcnow
from app.storage import get_storage

MAX_LISTED = 100          # findings of one kind kept in a report (the worst first)
MAX_LEAKS_LISTED = 50     # leaking image pairs listed per model
PROGRESS_EVERY_S = 0.5
ACTIVE = ("queued", "running")
DEAD_JOB_MESSAGE = ("The health check stopped unexpectedly (the worker was restarted or the job was lost). "
                    "Run it again.")


# --- the state file -----------------------------------------------------------------------

def health_path(dataset_id: int) -> Path:
    return get_storage().root / "health" / f"{int(dataset_id)}.json"


def _stamp(dataset_id: int) -> str | None:
    created = db.session.scalar(select(Dataset.created_at).where(Dataset.id == dataset_id))
    return created.isoformat() if created else None


def load_health(dataset_id: int) -> dict:
    """The stored health state of a dataset (an empty 'idle' one when there is none)."""
    try:
        state = json.loads(health_path(dataset_id).read_text())
    except (FileNotFoundError, ValueError):
        state = {}
    stamp = _stamp(dataset_id)
    if state.get("dataset_created") != stamp:  # a file left by a deleted dataset whose id was reused
        state = {"dataset_created": stamp}
    state.setdefault("state", "idle")
    state.setdefault("report", None)
    state.setdefault("ignored", [])
    return state


@contextmanager
def _locked(dataset_id: int):
    with get_redis().lock(f"studio:health-lock:{dataset_id}", timeout=30, blocking_timeout=15):
        yield


def update_health(dataset_id: int, change: Callable[[dict], None]) -> dict:
    """Apply `change` to the stored state under the lock and write it back atomically."""
    with _locked(dataset_id):
        state = load_health(dataset_id)
        change(state)
        get_storage().write_atomic(health_path(dataset_id), json.dumps(state).encode())
    return state


def remove_health(dataset_id: int) -> None:
    """Forget a dataset's health report (e.g. when the dataset is deleted)."""
    health_path(dataset_id).unlink(missing_ok=True)


def _job_alive(job_id: str | None) -> bool:
    from app.jobs.queue import job_status

    return job_status(job_id) in ("queued", "started", "deferred", "scheduled")


def current_state(dataset_id: int) -> dict:
    """The stored state, with a queued/running check whose job has died shown as failed."""
    state = load_health(dataset_id)
    if state["state"] in ACTIVE and not _job_alive(state.get("job_id")):
        state.update(state="failed", error=DEAD_JOB_MESSAGE)
    return state


# --- starting a check ---------------------------------------------------------------------

def start_health_check(dataset_id: int) -> dict:
    """Queue a health check of the dataset; Conflict when one is already under way."""
    from app.jobs.health import enqueue_health_check, new_job_id

    if not db.session.scalar(select(Image.id).where(Image.dataset_id == dataset_id).limit(1)):
        raise ValidationError("This dataset has no images yet, so there is nothing to check.")
    job_id = new_job_id(dataset_id)

    def queue(state: dict) -> None:
        if state["state"] in ACTIVE and _job_alive(state.get("job_id")):
            raise Conflict("A health check of this dataset is already running.")
        state.update(state="queued", job_id=job_id, message="Waiting for a free worker…", fraction=0.0,
                     error=None)

    state = update_health(dataset_id, queue)
    try:
        enqueue_health_check(dataset_id, job_id)
    except Exception:
        update_health(dataset_id, lambda s: s.update(state="failed", error="The check could not be queued."))
        raise
    return state


# --- the check itself ---------------------------------------------------------------------

class _Progress:
    """Writes 'running' + a plain message to the state file, at most every PROGRESS_EVERY_S."""

    def __init__(self, dataset_id: int):
        self.dataset_id = dataset_id
        self.last = 0.0

    def __call__(self, message: str, fraction: float, force: bool = False) -> None:
        if force or time.monotonic() - self.last >= PROGRESS_EVERY_S:
            self.last = time.monotonic()
            update_health(self.dataset_id, lambda s: s.update(state="running", message=message,
                                                               fraction=round(fraction, 3)))


def check_dataset(dataset_id: int, progress: Callable[..., None] | None = None) -> dict:
    """Compute a health report of the dataset now (no queue, nothing stored): {"created", "findings", ...}."""
    progress = progress or (lambda *a, **k: None)
    images = list(db.session.scalars(select(Image).where(Image.dataset_id == dataset_id).order_by(Image.id)))
    progress("Checking that every image can be opened", 0.02, force=True)
    broken, usable = _broken_images(images)
    progress("Looking at every image (this is the slow part)", 0.05, force=True)
    vectors = _embeddings(usable, lambda done, total: progress(
        f"Looking at every image: {done} of {total}", 0.05 + 0.8 * done / max(total, 1)))
    progress("Comparing images and labels", 0.9, force=True)
    findings = _file_findings(images, broken)
    findings += _duplicate_findings(usable, vectors)
    findings += _label_findings(usable, vectors)
    findings += _leak_findings(dataset_id, {img.sha256: vec for img, vec in zip(usable, vectors)})
    findings += _class_findings(dataset_id)
    return {"created": utcnow().isoformat(timespec="seconds") + "Z", "image_count": len(images),
            "findings": findings}


def run_health_check(dataset_id: int) -> dict:
    """Compute and store the report (what the job runs); a failure is recorded and re-raised."""
    progress = _Progress(dataset_id)
    try:
        report = check_dataset(dataset_id, progress)
    except Exception as exc:
        db.session.rollback()
        message = f"The health check failed ({type(exc).__name__}: {exc})."[:300]
        update_health(dataset_id, lambda s: s.update(state="failed", error=message))
        raise
    update_health(dataset_id, lambda s: s.update(state="done", report=report, message=None, fraction=1.0,
                                                 error=None))
    return report


def _broken_images(images: list[Image]) -> tuple[list[Image], list[Image]]:
    """(images whose file is missing or does not decode, the rest). A cached embedding proves it decoded."""
    storage, cache = get_storage(), _cache()
    broken, usable = [], []
    for img in images:
        path = storage.image_path(img.sha256)
        ok = cache.load(img.sha256) is not None or (path.exists() and mlh.is_decodable(str(path)))
        (usable if ok else broken).append(img)
    return broken, usable


def _settings() -> tuple[str, int]:
    """(architecture, image size) of the embeddings: quick mode's defaults, so its cache is reused."""
    from app.ml.architectures import architecture_info

    arch = current_app.config.get("HEALTH_ARCHITECTURE") or mlh.DEFAULT_ARCHITECTURE
    return arch, current_app.config.get("HEALTH_IMAGE_SIZE") or architecture_info(arch).default_image_size


def _cache():
    from app.ml.embeddings import EmbeddingCache

    arch, size = _settings()
    return EmbeddingCache(get_storage().embedding_cache_dir, arch, size)


def _embeddings(images: list[Image], on_batch):
    if not images:
        return []
    arch, size = _settings()
    storage = get_storage()
    return mlh.embed_images([str(storage.image_path(i.sha256)) for i in images], [i.sha256 for i in images],
                            storage.embedding_cache_dir, arch, size, device=current_app.config.get("HEALTH_DEVICE"),
                            on_batch=on_batch)


def _file_findings(images: list[Image], broken: list[Image]) -> list[dict]:
    found = [{"key": f"corrupt:{img.sha256}", "kind": "corrupt", "images": [img.id]} for img in broken]
    tiny = [images[i] for i in mlh.small_images([(i.width, i.height) for i in images])]
    found += [{"key": f"tiny:{img.sha256}", "kind": "tiny", "images": [img.id], "size": [img.width, img.height],
               "min_side": mlh.MIN_SIDE} for img in tiny if img not in broken]
    return found[:MAX_LISTED]


def _duplicate_findings(images: list[Image], vectors) -> list[dict]:
    if len(images) < 2:
        return []
    groups = mlh.near_duplicate_groups(vectors, current_app.config.get("HEALTH_DUPLICATE_SIMILARITY",
                                                                       mlh.DUPLICATE_SIMILARITY))
    return [{"key": "duplicate:" + ",".join(sorted(images[i].sha256[:16] for i in g["members"])),
             "kind": "duplicate", "images": [images[i].id for i in g["members"]], "similarity": g["similarity"]}
            for g in groups[:MAX_LISTED]]


def _label_findings(images: list[Image], vectors) -> list[dict]:
    labelled = [(k, img) for k, img in enumerate(images) if img.label_id is not None]
    label_ids = sorted({img.label_id for _, img in labelled})
    if len(label_ids) < 2 or len(labelled) < 2 * mlh.FOLDS:
        return []  # too little to learn from: every verdict would be noise
    index = {label_id: c for c, label_id in enumerate(label_ids)}
    labels = [index[img.label_id] for _, img in labelled]
    probs = mlh.out_of_fold_probs(vectors[[k for k, _ in labelled]], labels, len(label_ids))
    found = []
    for issue in mlh.likely_label_errors(probs, labels)[:MAX_LISTED]:
        img = labelled[issue.index][1]
        found.append({"key": f"label:{img.sha256}:{img.label_id}>{label_ids[issue.suggested]}",
                      "kind": "label_error", "images": [img.id], "given_label_id": img.label_id,
                      "suggested_label_id": label_ids[issue.suggested], "confidence": issue.confidence})
    return found


def _leak_findings(dataset_id: int, vectors: dict) -> list[dict]:
    runs = db.session.scalars(select(TrainingRun).where(
        TrainingRun.dataset_id == dataset_id, TrainingRun.status == "succeeded").order_by(TrainingRun.id))
    found = []
    for run in runs:
        snapshot = run.snapshot or {}
        samples, split = snapshot.get("samples") or [], snapshot.get("split") or {}
        part = {name: [(int(samples[i][0]), samples[i][2]) for i in split.get(name, []) if i < len(samples)]
                for name in ("train", "test")}
        leaks = mlh.split_leaks(part["train"], part["test"], vectors,
                                current_app.config.get("HEALTH_DUPLICATE_SIMILARITY", mlh.DUPLICATE_SIMILARITY))
        if leaks:
            pairs = [[leak["test"][0], leak["train"][0], leak["how"], leak["similarity"]] for leak in leaks]
            found.append({"key": f"leak:{run.id}", "kind": "leakage", "run_id": run.id, "run_name": run.name,
                          "test_count": len(part["test"]), "leak_count": len(leaks),
                          "pairs": pairs[:MAX_LEAKS_LISTED],
                          "images": sorted({i for p in pairs[:MAX_LEAKS_LISTED] for i in p[:2]})})
    return found


def _class_findings(dataset_id: int) -> list[dict]:
    classes, _ = class_counts(dataset_id)
    counts = {c["label"].name: c["count"] for c in classes}
    ids = {c["label"].name: c["label"].id for c in classes}
    found = []
    for item in mlh.class_size_findings(counts, MIN_IMAGES_PER_CLASS, IMBALANCE_RATIO):
        if item["kind"] == "small_class":
            found.append({**item, "key": f"small:{ids[item['class']]}",
                          "label_id": ids[item["class"]], "min_images": MIN_IMAGES_PER_CLASS, "images": []})
        else:
            found.append({**item, "key": f"imbalance:{item['largest']}:{item['smallest']}", "images": [],
                          "label_ids": [ids[item["largest"]], ids[item["smallest"]]]})
    return found


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
    run_ids = set(db.session.scalars(select(TrainingRun.id).where(TrainingRun.dataset_id == dataset_id)))
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


def apply_fix(dataset_id: int, key: str, action: str, image_id: int | None, user_id: int) -> str:
    """Apply a fix to a shown finding; returns a plain sentence saying what happened."""
    if action not in FIXES:
        raise ValidationError("Unknown fix. Reload the page and try again.")
    findings, images, _ = visible_findings(dataset_id, current_state(dataset_id))
    finding = next((f for f in findings if f["key"] == key), None)
    if finding is None:
        raise NotFound("This finding is no longer there: the dataset changed since. Reload the page.")
    if FIXES[action] is not None and finding["kind"] not in FIXES[action]:
        raise ValidationError("That fix does not apply to this finding.")
    if action == "ignore":
        update_health(dataset_id, lambda s: s.update(ignored=sorted(set(s["ignored"]) | {key})))
        return "Hidden. It will not be shown again."
    if action == "relabel":
        set_labels(dataset_id, finding["images"][:1], finding["suggested_label_id"], user_id)
        return "Label changed."
    if image_id not in finding["images"] or image_id not in images:
        raise ValidationError("Choose one of the images of this finding to remove.")
    delete_images(dataset_id, [image_id])
    return "Image removed from the dataset."
