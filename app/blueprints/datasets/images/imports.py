"""Imports in the background: starting one (the upload is streamed to STORAGE_DIR/uploads/<import id>/
and a job queued), its status for pages and scripts, cancelling it, and the reaper that fails imports
whose worker died. Running an import is importer.py; what counts as an entry is sources.py.

A zip is checked as a whole while the request still runs (damaged, too many files, too many bytes: a clear
error at once, nothing stored); each entry is then checked by the job.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Callable

from flask import current_app, url_for
from flask_babel import gettext as _
from sqlalchemy import select, update

from app.i18n import N_
from app.blueprints.datasets.images.importer import ZIP_NAME, counters, outcome_columns, remove_upload
from app.blueprints.datasets.images.intake import clean_filename
from app.blueprints.datasets.images.sources import ZipRejected, open_zip, plan_zip, write_manifest
from app.blueprints.webhooks.services import notify as notify_webhooks
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.jobs import DEAD_JOB_STATUSES, IMPORT, JobKind, enqueue, job_status, new_job_id, remove_job
from app.models import Dataset, Import, User, utcnow
from app.filestore import import_prefix
from app.storage import get_storage

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
RECENT = timedelta(hours=24)
DEAD_WORKER = N_("the worker running it stopped unexpectedly (it was restarted, killed or ran out of memory).")
LOST_JOB = N_("its job disappeared from the queue before a worker started it.")
NEVER_QUEUED = N_("the upload was interrupted before the import could be queued.")
ABANDONED_AFTER_S = 24 * 3600  # a staged upload older than this belongs to a request that died


# --- starting ------------------------------------------------------------------------------------

def _save_stream(stream: BinaryIO, dest: Path) -> None:
    """Copy an uploaded stream to disk a chunk at a time (never the whole file in memory)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        shutil.copyfileobj(stream, out, CHUNK)


def _zip_total(path: Path) -> int:
    """The number of entries the job will look at; ZipRejected when the zip is refused as a whole."""
    cfg = current_app.config
    with open_zip(path) as zf:
        plan = plan_zip(zf, cfg["MAX_ZIP_FILES"], cfg["MAX_ZIP_UNCOMPRESSED"])
    if not plan.entries and not plan.skipped:
        raise ZipRejected.because(N_("The zip contains no images."))
    return len(plan.entries) + len(plan.skipped)


def launch_import(imp: Import, move: Callable[[Path], None], job: JobKind = IMPORT) -> Import:
    """Move the staged upload into uploads/<id>/ and queue the job; on any failure the import is marked
    failed and its upload removed, so nothing is left half-done."""
    storage, prefix = get_storage(), import_prefix(imp.id)
    folder = storage.work_dir(prefix)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        move(folder)
        storage.put_dir(prefix, folder)  # with a bucket, the worker that imports it may be elsewhere
        storage.discard_work(prefix)
        imp.upload_path = prefix
        imp.job_id = new_job_id(job, imp.id)
        db.session.commit()
        enqueue(job, imp.id, job_id=imp.job_id, description=f"import {imp.id} into dataset {imp.dataset_id}")
    except BaseException:
        db.session.rollback()
        db.session.execute(update(Import).where(Import.id == imp.id).values(
            status="failed", finished_at=utcnow(), message=N_("The import could not be started. Try again.")))
        db.session.commit()
        notify_webhooks("import.finished", imp.id)
        storage.discard_work(prefix)
        storage.delete_prefix(prefix)
        raise
    log.info("import %s dataset=%s: queued (%s, %d files)", imp.id, imp.dataset_id, imp.kind, imp.total)
    return imp


def new_import(dataset_id: int, user_id: int | None, kind: str, source_name: str, total: int) -> Import:
    imp = Import(dataset_id=dataset_id, user_id=user_id, kind=kind, source_name=source_name[:255],
                 total=total, status="queued", errors=[])
    db.session.add(imp)
    db.session.commit()
    return imp


def launch_file(imp: Import, staged: Path, name: str, job: JobKind = IMPORT) -> Import:
    """launch_import of one staged file, which the import's folder holds as `name`."""
    def move(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(staged, folder / name)

    return launch_import(imp, move, job)


def start_zip_import(dataset_id: int, user_id: int | None, filename: str, stream: BinaryIO) -> Import:
    """Store an uploaded zip, check it as a whole (ZipRejected, nothing kept), queue its import."""
    staged = get_storage().incoming_dir / f"{uuid.uuid4().hex}.zip"
    try:
        _save_stream(stream, staged)
        total = _zip_total(staged)
        imp = new_import(dataset_id, user_id, "zip", clean_filename(filename), total)
        return launch_file(imp, staged, ZIP_NAME)
    finally:
        staged.unlink(missing_ok=True)


def start_files_import(dataset_id: int, user_id: int | None, files: list[tuple[str, BinaryIO]],
                       label: str | None = None) -> Import:
    """Store many uploaded loose images (as 0, 1, ... with their names in a manifest), queue their import;
    `label`: the name of the class they all go to."""
    staged = get_storage().incoming_dir / uuid.uuid4().hex
    try:
        for i, (_name, stream) in enumerate(files):
            _save_stream(stream, staged / str(i))
        write_manifest(staged, [clean_filename(name) for name, _ in files], label)
        imp = new_import(dataset_id, user_id, "files", f"{len(files):,} uploaded files", len(files))
        return launch_import(imp, lambda folder: os.replace(staged, folder))
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def start_folder_import(dataset_id: int, path: str) -> Import:
    """An import of a folder on this server (run by `flask import-folder`, in its own process)."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise ValidationError(f"{folder} is not a folder.")
    if len(str(folder)) > 255:
        raise ValidationError(_("The folder's path is too long (at most 255 characters)."))
    if db.session.get(Dataset, dataset_id) is None:
        raise NotFound(f"There is no dataset {dataset_id}.")
    return new_import(dataset_id, None, "folder", str(folder), 0)


# --- status, listing, cancelling -------------------------------------------------------------------

def get_import(dataset_id: int, import_id: int) -> Import:
    """An import into this dataset (404 for any other)."""
    imp = db.session.get(Import, import_id)
    if imp is None or imp.dataset_id != dataset_id:
        raise NotFound(_("This import does not exist in this dataset."))
    return imp


def view_import(dataset_id: int, import_id: int) -> Import:
    """The import for its pages and status URL; first fails imports whose worker died (throttled)."""
    maybe_reap()
    return get_import(dataset_id, import_id)


def import_json(imp: Import) -> dict:
    """The status document of an import (see the README's API section); messages in English."""
    doc = {"id": imp.id, "kind": imp.kind, "source": imp.source_name, "status": imp.status, **counters(imp),
           "errors": [{"filename": e.get("filename"), "message": e.get("message")} for e in imp.errors or []],
           "message": imp.message, "cancel_requested": imp.cancel_requested,
           "created_at": _iso(imp.created_at), "started_at": _iso(imp.started_at),
           "finished_at": _iso(imp.finished_at),
           "status_url": url_for("datasets.images.import_status", dataset_id=imp.dataset_id, import_id=imp.id),
           "page_url": url_for("datasets.images.show_import", dataset_id=imp.dataset_id, import_id=imp.id)}
    if imp.active:
        doc["cancel_url"] = url_for("datasets.images.cancel_import", dataset_id=imp.dataset_id, import_id=imp.id)
    return doc


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def dataset_imports(dataset_id: int, limit: int = 3) -> list[Import]:
    """What the dataset page shows: every running or waiting import, then the latest few that ended
    in the last day (newest first)."""
    maybe_reap()
    active = db.session.scalars(select(Import).where(
        Import.dataset_id == dataset_id, Import.status.in_(Import.ACTIVE)).order_by(Import.id.desc())).all()
    ended = db.session.scalars(select(Import).where(
        Import.dataset_id == dataset_id, Import.status.not_in(Import.ACTIVE),
        Import.created_at > utcnow() - RECENT).order_by(Import.id.desc()).limit(limit)).all()
    return list(active) + list(ended)


def cancel_import(user: User, dataset: Dataset, import_id: int) -> Import:
    """Stop an import: a waiting one at once, a running one at its next commit (what it added stays).
    The caller checked that `user` is an editor or the owner (as whoever started it was)."""
    imp = get_import(dataset.id, import_id)
    if not imp.active:
        return imp
    queued = db.session.execute(update(Import).where(Import.id == imp.id, Import.status == "queued").values(
        status="cancelled", cancel_requested=True, finished_at=utcnow(),
        **outcome_columns("cancelled", counters(imp)))).rowcount
    if not queued:  # running (or claimed just now): the job stops at its next commit
        db.session.execute(update(Import).where(Import.id == imp.id).values(cancel_requested=True))
    db.session.commit()
    if queued:
        remove_job(imp.job_id)
        remove_upload(imp)
        notify_webhooks("import.finished", imp.id)
    db.session.refresh(imp)
    log.info("import %s dataset=%s: cancel requested by user=%s", imp.id, dataset.id, user.id)
    return imp


# --- reaper ----------------------------------------------------------------------------------------

def _fail(imp: Import, reason: str) -> None:
    log.warning("import %s job=%s: %s -> failed (reaped)", imp.id, imp.job_id, imp.status)
    imp.status, imp.finished_at = "failed", utcnow()
    for column, value in outcome_columns("failed", counters(imp), reason).items():
        setattr(imp, column, value)
    remove_upload(imp)
    db.session.commit()  # before the webhooks' job can read the import
    notify_webhooks("import.finished", imp.id)


def _dead(imp: Import, cutoff, now) -> str | None:
    """Why an active import can never finish, or None while it may."""
    if imp.status == "running":
        beat = imp.heartbeat_at or imp.started_at
        if beat is None or beat < cutoff or (imp.job_id and job_status(imp.job_id) in DEAD_JOB_STATUSES[1:]):
            return DEAD_WORKER
        return None
    if imp.job_id is None:  # between the upload and the queue; `flask import-folder` runs it directly
        return NEVER_QUEUED if imp.kind != "folder" and imp.created_at < now - timedelta(hours=1) else None
    # a row is committed just before its job is enqueued: give that a moment
    if imp.created_at < now - timedelta(seconds=5) and job_status(imp.job_id) in DEAD_JOB_STATUSES:
        return LOST_JOB
    return None


def reap_stale_imports(max_age_s: float = 120) -> int:
    """Fail imports that can never finish (see _dead); returns how many were marked failed. Also removes
    uploads left half-received by a web process that died while storing them."""
    now = utcnow()
    cutoff = now - timedelta(seconds=max_age_s)
    reaped = 0
    for imp in db.session.scalars(select(Import).where(Import.status.in_(Import.ACTIVE))).all():
        reason = _dead(imp, cutoff, now)
        if reason:
            _fail(imp, reason)
            reaped += 1
    db.session.commit()  # also ends the read transaction
    _remove_abandoned(get_storage().incoming_dir, time.time() - ABANDONED_AFTER_S)
    return reaped


def _remove_abandoned(folder: Path, before: float) -> None:
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime >= before:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:  # another process removed or moved it meanwhile
            continue


_last_reap = {"at": 0.0}


def maybe_reap(every_s: float = 5.0) -> None:
    """Reap at most every `every_s` seconds per process; cheap enough to call from page views."""
    now = time.monotonic()
    if now - _last_reap["at"] < every_s:
        return
    _last_reap["at"] = now
    try:
        reap_stale_imports(current_app.config["IMPORT_STALE_SECONDS"])
    except Exception:  # a page must still render when Redis hiccups
        db.session.rollback()
        log.exception("stale-import reaper failed")
