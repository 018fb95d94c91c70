"""Running an import: the body of the import job, and of `flask import-folder`.

Entries are read one at a time (never more than MAX_IMAGE_BYTES each) and hashed; an entry whose bytes
the dataset (or this import) already has is skipped before decoding. The others are decoded and
thumbnailed on IMPORT_THREADS threads, a few entries in flight at most, then stored and settled in order. Rows are inserted, and the progress counters committed, every IMPORT_BATCH_SIZE images or
every second, in one short transaction that also reads the cancel flag; no transaction stays open in
between. A failed or cancelled import keeps what it committed, and its row says what was not imported.

State machine of an import: queued -> running -> finished | failed | cancelled (queued -> cancelled, and
queued/running -> failed by the reaper when its worker died).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from flask import current_app
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from app import quotas
from app.batching import chunked
from app.blueprints.datasets.classes import clean_class_name, get_or_create_label
from app.blueprints.datasets.images.intake import (
    BadImage, check_image, clean_filename, remove_unreferenced, sha256_of, write_files,
)
from app.blueprints.datasets.images.sources import (
    Budget, Entry, Plan, open_zip, plan_folder, plan_stored_files, plan_zip, read_entry,
)
from app.blueprints.datasets.images.zip_labels import apply_labels_file
from app.blueprints.webhooks.services import notify as notify_webhooks
from app.database import retry_write
from app.errors import DomainError, ValidationError
from app.i18n import N_, PN_, stored_join, stored_line, stored_plural
from app.extensions import db
from app.models import Image, Import, utcnow
from app.storage import get_storage

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0
ZIP_NAME = "upload.zip"
Progress = Callable[[dict], None]


def counters(imp) -> dict:
    """The progress numbers of an import (row or Importer), as the status JSON and the pages show them."""
    return {k: getattr(imp, k) for k in ("total", "processed", "added", "duplicates", "error_count")}


def outcome_columns(status: str, numbers: dict, reason: str | dict | None = None, report: dict | None = None) -> dict:
    """The Import columns saying what a stopped import kept and what it did not (None for a finished
    one), then `report` (what a CSV of labels did): `message`, the English text the API answers, and
    `message_line`, the same as an app.i18n stored line that the page shows in the reader's language."""
    lines = [] if status == "finished" else [_outcome_line(status, numbers, reason)]
    line = stored_join(*lines, report) if report and lines else (lines[0] if lines else report)
    return {"message": line["message"] if line else None, "message_line": line}


def _outcome_line(status: str, numbers: dict, reason: str | dict | None) -> dict:
    left = max(0, numbers["total"] - numbers["processed"])
    counts = {"processed": numbers["processed"], "total": numbers["total"]}
    if reason:
        head = stored_line({"cancelled": N_("Cancelled after %(processed)s of %(total)s files: %(reason_word)s"),
                            "failed": N_("Stopped after %(processed)s of %(total)s files: %(reason_word)s")}[status],
                           reason_word=reason, **counts)  # a stored line, or text (translated when N_-marked)
    else:
        head = stored_line({"cancelled": N_("Cancelled after %(processed)s of %(total)s files."),
                            "failed": N_("Stopped after %(processed)s of %(total)s files.")}[status], **counts)
    kept = stored_plural(PN_("The %(kept)s image added before was kept;",
                             "The %(kept)s images added before were kept;"), "kept", kept=numbers["added"])
    rest = stored_plural(PN_("the other %(left)s file was not imported.",
                             "the other %(left)s files were not imported."), "left", left=left)
    return stored_join(head, kept, rest)


def existing_shas(dataset_id: int) -> set[str]:
    """Hashes already in the dataset (read once, so no query runs while entries are handled)."""
    shas: set[str] = set()
    last = 0
    while True:  # keyset pages: never one giant result set
        rows = db.session.execute(select(Image.id, Image.sha256).where(Image.dataset_id == dataset_id,
                                  Image.id > last).order_by(Image.id).limit(5000)).all()
        if not rows:
            return shas
        shas.update(sha for _, sha in rows)
        last = rows[-1][0]


@dataclass
class Pending:
    """An entry read and hashed, waiting for its decode (future None: a copy of an entry still decoding,
    settled the same way as that entry once it is)."""

    entry: Entry
    label: str | None
    sha: str
    size: int
    future: Future | None

    def ready(self) -> bool:
        return self.future is None or self.future.done()


class Importer:
    """Handles the entries of one import and writes its rows and counters in batches."""

    def __init__(self, imp: Import, progress: Progress | None = None):
        cfg = current_app.config
        self.import_id, self.dataset_id, self.user_id = imp.id, imp.dataset_id, imp.user_id
        self.max_bytes, self.max_pixels = cfg["MAX_IMAGE_BYTES"], cfg["MAX_IMAGE_PIXELS"]
        self.batch_size = max(1, cfg["IMPORT_BATCH_SIZE"])
        self.storage, self.progress, self.budget = get_storage(), progress, None
        self.known = existing_shas(imp.dataset_id)
        self.total, self.processed, self.added, self.duplicates, self.error_count = imp.total, 0, 0, 0, 0
        self.errors: list[dict] = []
        self.rows: list[dict] = []
        self.written: list[str] = []  # files created by the batch not yet committed
        self.labels: dict[str, int] = {}
        self.decoding: set[str] = set()  # hashes on the pool, not settled yet
        self.bad: dict[str, dict] = {}  # hash -> why those bytes cannot be used (copies get the same answer)
        self.threads = max(1, cfg["IMPORT_THREADS"])
        self.retry_s = cfg["IMPORT_DB_RETRY_SECONDS"]
        self.cancelled = False
        self.labels_report: dict | None = None  # what the zip's CSV of labels did (zip_labels.py)
        self.owner_id = quotas.owner_of(imp.dataset_id)
        self.quota_reason: dict | None = None  # set when the owner's quota stops the import (a stored line)
        self.room = quotas.image_room(self.owner_id)  # (images, bytes) left; refreshed at every flush
        self.last_flush = time.monotonic()
        db.session.commit()  # end the read transaction: none stays open while entries are handled

    def error(self, name: str, why: dict) -> None:  # returns None, so `return self.error(...)` reads well
        """Count an unusable entry; the first few are kept with why (an app.i18n.stored_line: English for
        the API, the reader's language on the page)."""
        self.processed += 1
        self.error_count += 1
        if len(self.errors) < Import.MAX_ERRORS:
            self.errors.append({"filename": name, **why})

    def duplicate(self) -> None:
        self.processed += 1
        self.duplicates += 1

    def prepare(self, entry: Entry, pool: ThreadPoolExecutor) -> Pending | None:
        """Read and hash one entry here; queue its decode on the pool unless it is settled at once
        (a duplicate -- never decoded --, unreadable, or under a folder name that cannot be a class)."""
        try:
            label = entry.label or (clean_class_name(entry.parts[0]) if len(entry.parts) >= 2 else None)
        except ValidationError as err:
            return self.error(entry.name, stored_line(N_("Skipped: its folder name cannot be a class name. "
                                                         "%(why_word)s"), why_word=err.message))  # N_-marked
        try:
            data = read_entry(entry, self.max_bytes, self.budget)
        except BadImage as err:
            return self.error(entry.name, err.line)
        sha = sha256_of(data)
        if sha in self.known:
            return self.duplicate()
        if sha in self.bad:
            return self.error(entry.name, self.bad[sha])
        if sha in self.decoding:  # a copy of an entry still decoding: settled after it, in order
            return Pending(entry, label, sha, len(data), None)
        self.decoding.add(sha)
        return Pending(entry, label, sha, len(data), pool.submit(check_image, data, self.max_pixels, sha))

    def collect(self, item: Pending) -> None:
        """Settle a prepared entry (in upload order): store the decoded image, or count the error/copy.
        Once the owner's quota is reached, entries are left as they are (not imported)."""
        if self.quota_reason:
            return None
        if item.future is None:
            return self.duplicate() if item.sha in self.known else self.error(item.entry.name, self.bad[item.sha])
        self.decoding.discard(item.sha)
        try:
            checked = item.future.result()
        except BadImage as err:
            self.bad[item.sha] = err.line
            return self.error(item.entry.name, err.line)
        if not self.fits(item.size):  # the quota is reached: this entry and the rest stay out
            self.quota_reason = quotas.images_full_line(
                self.owner_id, len(self.rows) + 1, sum(r["size_bytes"] for r in self.rows) + item.size, self.user_id)
            return None
        if write_files(checked, self.storage):
            self.written.append(item.sha)
        self.known.add(item.sha)
        self.rows.append({"sha256": item.sha, "filename": clean_filename(item.entry.parts[-1]),
                          "width": checked.width, "height": checked.height, "size_bytes": item.size,
                          "format": checked.format, "label": item.label})
        self.processed += 1

    def run(self, entries: list[Entry]) -> None:
        """Handle the entries until done or cancelled: read and hash here, decode on `threads` threads with
        at most twice that many entries in flight (memory stays bounded), settle them in order."""
        pending: deque[Pending] = deque()
        with ThreadPoolExecutor(self.threads, thread_name_prefix="import-decode") as pool:
            try:
                for entry in entries:
                    if self.cancelled or self.quota_reason:
                        return
                    item = self.prepare(entry, pool)
                    if item is not None:
                        pending.append(item)
                    while pending and (len(pending) > 2 * self.threads or pending[0].ready()):
                        self.collect(pending.popleft())
                    if self.due():
                        self.flush()
                while pending and not self.quota_reason:
                    self.collect(pending.popleft())
            finally:
                for item in pending:  # cancelled or failed: entries in flight are not imported
                    if item.future is not None:
                        item.future.cancel()

    def fits(self, size: int) -> bool:
        """Whether one more image of `size` bytes fits beside the rows waiting for the next flush (the
        flush itself reserves the room atomically: see _reserve)."""
        images, nbytes = self.room
        waiting = sum(row["size_bytes"] for row in self.rows)
        return (images is None or len(self.rows) + 1 <= images) and (nbytes is None or waiting + size <= nbytes)

    def due(self) -> bool:
        return len(self.rows) >= self.batch_size or time.monotonic() - self.last_flush >= FLUSH_EVERY_S

    def flush(self) -> None:
        """Insert the waiting rows, write the counters and heartbeat, read the cancel flag: one commit,
        tried again while the database is busy."""
        inserted, taken, dropped = retry_write(self._write_batch, self.retry_s, f"rows of import {self.import_id}")
        self.added += inserted
        self.duplicates += taken
        if dropped:  # over the quota after all (another upload took the room): not imported, files removed
            self.processed -= len(dropped)
            remove_unreferenced(set(dropped) & set(self.written))
        self.rows, self.written, self.last_flush = [], [], time.monotonic()
        self.room = quotas.image_room(self.owner_id)
        db.session.commit()
        if self.progress:
            self.progress(counters(self))

    def _write_batch(self) -> tuple[int, int, list[str]]:
        """One try of a flush: (rows inserted, rows dropped because another upload added them meanwhile,
        hashes left out because the owner's quota had no room for them)."""
        self.labels.clear()  # classes made by a rolled-back try are gone
        fresh = self.rows
        try:
            rows = self._reserve(fresh)
            self._insert(rows)
        except IntegrityError:  # the same file arrived meanwhile through another upload
            db.session.rollback()
            self.labels.clear()
            fresh = self._without_concurrent(self.rows)
            rows = self._reserve(fresh)
            self._insert(rows)
        taken = len(self.rows) - len(fresh)
        dropped = [row["sha256"] for row in fresh[len(rows):]]  # _reserve keeps a prefix
        self.cancelled = bool(db.session.scalar(select(Import.cancel_requested).where(Import.id == self.import_id)))
        numbers = {**counters(self), "added": self.added + len(rows), "duplicates": self.duplicates + taken,
                   "processed": self.processed - len(dropped)}
        db.session.execute(update(Import).where(Import.id == self.import_id).values(
            heartbeat_at=utcnow(), errors=list(self.errors), **numbers))
        db.session.commit()
        return len(rows), taken, dropped

    def _reserve(self, rows: list[dict]) -> list[dict]:
        """The rows the owner's quota takes (all, or the first that fit), counted in this transaction."""
        if quotas.reserve_images(self.owner_id, len(rows), sum(r["size_bytes"] for r in rows)):
            return rows
        fit = quotas.fitting(rows, quotas.image_room(self.owner_id))
        self.quota_reason = quotas.images_full_line(self.owner_id, len(rows), sum(r["size_bytes"] for r in rows),
                                                       self.user_id)
        if fit and quotas.reserve_images(self.owner_id, len(fit), sum(r["size_bytes"] for r in fit)):
            return fit
        return []

    def _insert(self, rows: list[dict]) -> None:
        values = []
        for row in rows:
            label_id = self._label_id(row["label"]) if row["label"] else None
            values.append({**{k: v for k, v in row.items() if k != "label"}, "dataset_id": self.dataset_id,
                           "uploaded_by_id": self.user_id, "label_id": label_id,
                           "label_source": "import" if label_id else None,
                           "labeled_by_id": self.user_id if label_id else None, "created_at": utcnow()})
        if values:
            db.session.execute(insert(Image), values)

    def _label_id(self, name: str) -> int:
        key = name.lower()
        if key not in self.labels:
            self.labels[key] = get_or_create_label(self.dataset_id, name).id
        return self.labels[key]

    def _without_concurrent(self, rows: list[dict]) -> list[dict]:
        """The rows whose hash no other upload committed meanwhile."""
        taken: set[str] = set()
        for part in chunked([r["sha256"] for r in rows]):
            taken.update(db.session.scalars(select(Image.sha256).where(
                Image.dataset_id == self.dataset_id, Image.sha256.in_(part))))
        return [r for r in rows if r["sha256"] not in taken]

    def discard_batch(self) -> None:
        """After a failure: forget the rows not committed and remove the files only they used."""
        db.session.rollback()
        remove_unreferenced(self.written)
        self.processed -= len(self.rows)
        self.rows, self.written = [], []


# --- one import from start to end ------------------------------------------------------------------

def claim(import_id: int) -> Import | None:
    """queued -> running, atomically: an import cancelled meanwhile is never started (None then)."""
    def write() -> int:
        now = utcnow()
        result = db.session.execute(update(Import).where(
            Import.id == import_id, Import.status == "queued", Import.cancel_requested.is_(False),
        ).values(status="running", started_at=now, heartbeat_at=now))
        db.session.commit()
        return result.rowcount

    claimed = retry_write(write, current_app.config["IMPORT_DB_RETRY_SECONDS"], f"claim of import {import_id}")
    return db.session.get(Import, import_id) if claimed == 1 else None


@contextmanager
def open_plan(imp: Import) -> Iterator[tuple[Plan, Budget | None]]:
    """The entries of the import's source (and, for a zip, the budget of bytes it may unpack)."""
    cfg = current_app.config
    if imp.kind == "folder":
        yield plan_folder(imp.source_name), None
        return
    folder = get_storage().checkout(imp.upload_path)
    if imp.kind == "files":
        yield plan_stored_files(folder), None
        return
    with open_zip(folder / ZIP_NAME) as zf:
        yield (plan_zip(zf, cfg["MAX_ZIP_FILES"], cfg["MAX_ZIP_UNCOMPRESSED"]),
               Budget(cfg["MAX_ZIP_UNCOMPRESSED"]))


def _with_labels(importer: Importer, plan: Plan) -> Plan:
    plan, importer.labels_report = apply_labels_file(plan, current_app.config["LABELS_CSV_MAX_BYTES"])
    return plan


def _work(importer: Importer, plan: Plan) -> str:
    importer.total = len(plan.entries) + len(plan.skipped)
    for name, message in plan.skipped:
        importer.error(name, message)
    importer.flush()
    importer.run(plan.entries)
    importer.flush()
    if importer.quota_reason and importer.processed < importer.total:
        return "failed"  # stopped by the owner's quota: what fitted is kept, the message says why
    return "cancelled" if importer.cancelled and importer.processed < importer.total else "finished"


def run_import(import_id: int, progress: Progress | None = None) -> dict:
    """Run a queued import to its end (see the module doc); returns its final status and counters.
    Refusals of the source and Ctrl-C end it cleanly; unexpected errors are recorded, then re-raised."""
    imp = claim(import_id)
    if imp is None:
        return {"status": "skipped"}
    importer, reason = None, None
    try:
        with open_plan(imp) as (plan, budget):
            importer = Importer(imp, progress)
            importer.budget = budget
            status = _work(importer, _with_labels(importer, plan))
            reason = importer.quota_reason if status == "failed" else None
    except DomainError as err:  # the source was refused (damaged zip, over a limit): its line, shown translated
        status, reason = "failed", getattr(err, "line", None) or err.message
    except KeyboardInterrupt:  # `flask import-folder` stopped with Ctrl-C
        status = "cancelled"
    except Exception as exc:
        finish(import_id, "failed", importer,
               stored_line(N_("an unexpected error (%(error)s)."), error=type(exc).__name__))
        raise
    finish(import_id, status, importer, reason)
    return {"status": status, **counters(importer or imp)}


def finish(import_id: int, status: str, importer: Importer | None, reason: str | dict | None = None,
           report: dict | None = None) -> None:
    """Write the final status and counters (dropping an uncommitted batch first), remove the upload.
    `report` (or the importer's labels_report) says what a CSV of labels did."""
    if importer is not None:
        importer.discard_batch()
    else:
        db.session.rollback()
    imp = db.session.get(Import, import_id)
    numbers = counters(importer or imp)
    report = report or (importer.labels_report if importer is not None else None)
    values = {"status": status, "finished_at": utcnow(), "heartbeat_at": utcnow(),
              **outcome_columns(status, numbers, reason, report), **numbers}
    if importer is not None:
        values["errors"] = list(importer.errors)

    def write() -> None:
        db.session.execute(update(Import).where(Import.id == import_id).values(**values))
        db.session.commit()

    retry_write(write, current_app.config["IMPORT_DB_RETRY_SECONDS"], f"end of import {import_id}")
    remove_upload(imp)
    log.info("import %s dataset=%s: -> %s (%s)", import_id, imp.dataset_id, status, numbers)
    notify_webhooks("import.finished", import_id)


def remove_upload(imp: Import) -> None:
    """Delete the stored upload of an import (never a server folder it imported from)."""
    if imp.upload_path:
        get_storage().discard_work(imp.upload_path)
        get_storage().delete_prefix(imp.upload_path)
