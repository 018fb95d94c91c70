"""Labeling a dataset's images from a CSV of labels (label_csv.py reads it).

Rows match images by file name, with or without the extension; a name that several images of the dataset
hold is ambiguous and labels none of them. The whole CSV is read and checked while the request runs
(refused as a whole, nothing changed, when it is not UTF-8 CSV text, empty, too big, has one column, or
has no header known and no row that names an image). A small CSV on a small dataset is applied at once
(LABELS_SYNC_MAX_ROWS, LABELS_SYNC_MAX_IMAGES); otherwise it is stored like an upload and an import of
kind 'labels' applies it in the background, with progress in its row. Either way the labels before are
recorded for undo (undo.record_labels) and offered for UNDO_SECONDS: the change made at once in its toast,
a background one on its finished import ("Undo these labels"; its window runs from the import's end).
A background import that labels nothing gets its own badge and says why, with file names from the CSV
and from the dataset; one that labels some says how many rows were left out, and why.
"""
from __future__ import annotations

import itertools
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from flask import current_app
from sqlalchemy import func, select, update

from app.batching import chunked
from app.database import retry_write
from app.blueprints.datasets.classes import find_label, get_or_create_label
from app.blueprints.datasets.images import bp, undo
from app.blueprints.datasets.images.importer import claim, finish
from app.blueprints.datasets.images.imports import CHUNK, launch_file, new_import
from app.blueprints.datasets.images.intake import clean_filename
from app.blueprints.datasets.images.label_csv import (
    CsvRefused, LabelTable, base_key, problem_lines, read_label_table, stem, unknown_header,
)
from app.errors import DomainError
from app.extensions import db
from app.i18n import N_, PN_, stored_join, stored_line, stored_plural
from app.jobs import LABELS
from app.models import Image, Import, UndoAction, utcnow
from app.storage import get_storage

log = logging.getLogger(__name__)

LABELS_NAME = "labels.csv"
AMBIGUOUS = -1
PAGE = 5000
Progress = Callable[[int, int], None]


@dataclass
class LabelsResult:
    """What labeling from a CSV did."""

    table: LabelTable
    labeled: int = 0
    unmatched: int = 0  # rows that name no image of the dataset
    ambiguous: int = 0  # names several images hold
    created: int = 0  # classes made for the CSV
    undo_id: int | None = None
    unmatched_names: list[str] = field(default_factory=list)  # the first few, as the CSV writes them
    image_names: list[str] = field(default_factory=list)  # the first few file names of the dataset

    @property
    def left_out(self) -> int:
        """Rows (file names) that labeled nothing, whatever the reason."""
        return self.unmatched + self.ambiguous + self.table.conflicts + self.table.empty

    def line(self) -> dict:
        """The result as a stored line (shown in the reader's language; `message` is English): when nothing
        was labeled, why, with examples from the CSV and the dataset; else the images labeled, then how many
        rows were left out and why (only the reasons that apply), then the classes made."""
        if not self.labeled:
            head = [self._nothing_line()]
        else:
            head = [stored_plural(PN_("%(num)s image labeled.", "%(num)s images labeled."), "num", num=self.labeled)]
            if self.left_out:
                head.append(stored_plural(PN_("%(num)s row was left out:", "%(num)s rows were left out:"), "num",
                                          num=self.left_out))
        lines = head + self._reason_lines() + problem_lines(self.table)
        if self.created:
            lines.append(stored_plural(PN_("%(num)s class created.", "%(num)s classes created."), "num",
                                       num=self.created))
        return stored_join(*lines)

    def _nothing_line(self) -> dict:
        if self.unmatched and not self.ambiguous and not self.image_names:
            return stored_line(N_("No image was labeled: this dataset has no images yet."))
        if self.unmatched and not self.ambiguous:
            return stored_line(N_("No image was labeled: no row of the CSV matched an image in this dataset. Rows "
                                  "name files like %(csv_names)s; the dataset has files like %(image_names)s."),
                               csv_names=_quoted(self.unmatched_names), image_names=_quoted(self.image_names))
        return stored_line(N_("No image was labeled."))

    def _reason_lines(self) -> list[dict]:
        lines = []
        nothing_said = not self.labeled and not self.ambiguous  # the head line said it, with examples
        if self.unmatched and not nothing_said:
            lines.append(stored_plural(PN_("%(num)s row names no file of this dataset (e.g. %(csv_names)s).",
                                           "%(num)s rows name no file of this dataset (e.g. %(csv_names)s)."),
                                       "num", num=self.unmatched, csv_names=_quoted(self.unmatched_names)))
        if self.ambiguous:
            lines.append(stored_plural(PN_("%(num)s file name is held by several images (not labeled).",
                                           "%(num)s file names are held by several images (not labeled)."),
                                       "num", num=self.ambiguous))
        return lines

    def counts(self) -> dict:
        return {"rows": self.table.rows, "labeled": self.labeled, "unmatched": self.unmatched,
                "ambiguous": self.ambiguous, "classes_created": self.created, "conflicts": self.table.conflicts,
                "empty_rows": self.table.empty, "left_out": self.left_out}


EXAMPLES = 3  # file names quoted from the CSV and from the dataset


def _quoted(names: list[str]) -> str:
    return ", ".join(f"‘{name}’" for name in names[:EXAMPLES])


@dataclass
class LabelsStart:
    """What a request to label from a CSV did: a result now, or an import started."""

    result: LabelsResult | None = None
    imp: Import | None = field(default=None)


# --- matching and writing ---------------------------------------------------------------------------

def _image_names(dataset_id: int):
    """(id, filename) of every image of the dataset, by key a page at a time."""
    last = 0
    while True:
        rows = db.session.execute(select(Image.id, Image.filename).where(
            Image.dataset_id == dataset_id, Image.id > last).order_by(Image.id).limit(PAGE)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def match_images(dataset_id: int, table: LabelTable) -> dict[str, int]:
    """Row key -> the one image it names (AMBIGUOUS when several images hold that name)."""
    found: dict[str, int] = {}
    for image_id, filename in _image_names(dataset_id):
        key = filename if filename in table.labels else stem(filename)
        if key in table.labels:
            found[key] = AMBIGUOUS if key in found else image_id
    return found


def names_an_image(dataset_id: int, table: LabelTable) -> bool:
    """Whether some row names an image of the dataset (stops at the first one it finds)."""
    return any(filename in table.labels or stem(filename) in table.labels
               for _id, filename in _image_names(dataset_id))


def _classes(dataset_id: int, names) -> tuple[dict[str, int], int]:
    """Class id per name (made when missing, matched ignoring case), and how many were made."""
    ids, created = {}, 0
    for name in names:
        label = find_label(dataset_id, name)
        if label is None:
            label, created = get_or_create_label(dataset_id, name), created + 1
        ids[name] = label.id
    return ids, created


def _write(dataset_id: int, user_id: int | None, by_label: dict[int, list[int]], progress: Progress | None,
           retry_s: float = 0.0) -> int:
    """Set the classes, one UPDATE per chunk of ids, a commit after each (no long transaction). In the job
    (retry_s > 0) a chunk the database refuses for a moment (SQLite busy with other writers) is tried again."""
    total, done = sum(len(ids) for ids in by_label.values()), 0
    values = {"label_source": "import", "labeled_by_id": user_id, "label_model_id": None}
    for label_id, image_ids in by_label.items():
        for part in chunked(image_ids):
            def write_part(part=part, label_id=label_id, reached=done + len(part)) -> None:
                db.session.execute(update(Image).where(Image.dataset_id == dataset_id, Image.id.in_(part))
                                   .values(label_id=label_id, **values))
                if progress:
                    progress(reached, total)
                db.session.commit()
            retry_write(write_part, retry_s, f"labels of dataset {dataset_id}")
            done += len(part)
    return done


def _examples(dataset_id: int, table: LabelTable, found: dict[str, int]) -> tuple[list[str], list[str]]:
    """(the first few file names of the CSV that match no image, the first few of the dataset)."""
    unmatched = [key for key in itertools.islice((k for k in table.labels if k not in found), EXAMPLES)]
    images = list(db.session.scalars(select(Image.filename).where(Image.dataset_id == dataset_id)
                                     .order_by(Image.id).limit(EXAMPLES)))
    return unmatched, images


def apply_table(dataset_id: int, user_id: int | None, table: LabelTable, progress: Progress | None = None,
                retry_s: float = 0.0, import_id: int | None = None) -> LabelsResult:
    """Label the dataset's images the table names; the labels before are recorded for undo first (and, for
    the import `import_id`, linked to it in the same commit, so its result can offer the undo)."""
    found = match_images(dataset_id, table)
    result = LabelsResult(table, unmatched=len(table.labels) - len(found),
                          ambiguous=sum(1 for image_id in found.values() if image_id == AMBIGUOUS))
    if result.unmatched:
        result.unmatched_names, result.image_names = _examples(dataset_id, table, found)
    targets = {key: image_id for key, image_id in found.items() if image_id != AMBIGUOUS}
    class_ids, result.created = _classes(dataset_id, sorted({table.labels[key] for key in targets}))
    by_label: dict[int, list[int]] = {}
    for key, image_id in targets.items():
        by_label.setdefault(class_ids[table.labels[key]], []).append(image_id)
    if targets and user_id is not None:
        undo.expire()
        result.undo_id = undo.record_labels(dataset_id, user_id, sorted(targets.values())).id
        if import_id is not None:
            db.session.execute(update(Import).where(Import.id == import_id).values(undo_action_id=result.undo_id))
    db.session.commit()  # the classes and the undo record, before the images change
    result.labeled = _write(dataset_id, user_id, by_label, progress, retry_s)
    if progress and not targets:
        progress(0, 0)
    return result


# --- starting: at once or in the background ---------------------------------------------------------

def _save_capped(stream: BinaryIO, dest: Path, max_bytes: int) -> None:
    """Copy the upload to disk a chunk at a time, refusing it past max_bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(dest, "wb") as out:
        while chunk := stream.read(CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise CsvRefused.because(N_("The CSV file is larger than %(limit_bytes)s."), limit_bytes=max_bytes)
            out.write(chunk)


def _runs_now(dataset_id: int, table: LabelTable) -> bool:
    cfg = current_app.config
    if table.rows > cfg["LABELS_SYNC_MAX_ROWS"]:
        return False
    images = db.session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset_id)) or 0
    return images <= cfg["LABELS_SYNC_MAX_IMAGES"]


def label_from_csv(dataset_id: int, user_id: int | None, filename: str, stream: BinaryIO) -> LabelsStart:
    """Check an uploaded CSV of labels as a whole (CsvRefused: nothing changed), then apply it now or
    start its import. The caller checked that the user may edit the dataset."""
    max_bytes = current_app.config["LABELS_CSV_MAX_BYTES"]
    staged = get_storage().incoming_dir / f"{uuid.uuid4().hex}.csv"
    try:
        _save_capped(stream, staged, max_bytes)
        with open(staged, "rb") as fh:
            table = read_label_table(fh, max_bytes, base_key)
        if not table.header and not names_an_image(dataset_id, table):
            raise unknown_header(table)
        if _runs_now(dataset_id, table):
            return LabelsStart(result=apply_table(dataset_id, user_id, table))
        imp = new_import(dataset_id, user_id, "labels", clean_filename(filename or LABELS_NAME), table.rows)
        return LabelsStart(imp=launch_file(imp, staged, LABELS_NAME, LABELS))
    finally:
        staged.unlink(missing_ok=True)


# --- the job -----------------------------------------------------------------------------------------

def _progress_of(import_id: int) -> Progress:
    def write(done: int, total: int) -> None:  # committed by the caller with the chunk it counts
        now = utcnow()
        db.session.execute(update(Import).where(Import.id == import_id).values(
            processed=done, added=done, total=total, heartbeat_at=now))
        # the undo's window (UNDO_SECONDS) runs from the last labels written: a long import keeps it
        db.session.execute(update(UndoAction).where(UndoAction.id == select(Import.undo_action_id).where(
            Import.id == import_id).scalar_subquery()).values(created_at=now))
    return write


def run_label_import(import_id: int) -> dict:
    """Apply the stored CSV of a queued 'labels' import (the job's body); returns its status and counts.
    The rows left out are its error_count, and its message says why (with examples when nothing was
    labeled). Unexpected errors are recorded, then re-raised."""
    imp = claim(import_id)
    if imp is None:
        return {"status": "skipped"}
    dataset_id, user_id = imp.dataset_id, imp.user_id
    retry_s = current_app.config["IMPORT_DB_RETRY_SECONDS"]
    try:
        folder = get_storage().checkout(imp.upload_path)
        with open(folder / LABELS_NAME, "rb") as fh:
            table = read_label_table(fh, current_app.config["LABELS_CSV_MAX_BYTES"], base_key)
        result = apply_table(dataset_id, user_id, table, _progress_of(import_id), retry_s, import_id)
        retry_write(lambda: _count_left_out(import_id, result), retry_s, f"end of labels import {import_id}")
    except DomainError as err:
        finish(import_id, "failed", None, getattr(err, "line", None) or err.message)
        return {"status": "failed"}
    except Exception as exc:
        db.session.rollback()
        finish(import_id, "failed", None, stored_line(N_("an unexpected error (%(error)s)."), error=type(exc).__name__))
        raise
    finish(import_id, "finished", None, report=result.line())
    return {"status": "finished", **result.counts()}


def _count_left_out(import_id: int, result: LabelsResult) -> None:
    """The rows left out as the import's error count (its badge and the API say whether all, some or none
    of the rows labeled an image); the undo's window starts now, when the result is shown."""
    db.session.execute(update(Import).where(Import.id == import_id).values(
        error_count=result.left_out, added=result.labeled))
    if result.undo_id is not None:
        db.session.execute(update(UndoAction).where(UndoAction.id == result.undo_id).values(created_at=utcnow()))
    db.session.commit()


@bp.app_template_global()
def labels_undo_id(imp: Import, user_id: int | None) -> int | None:
    """The undo a finished labels import offers its user ("Undo these labels"), while it can still be
    undone (UNDO_SECONDS from its end, as other undos); None otherwise."""
    if imp.kind != "labels" or imp.status != "finished" or imp.undo_action_id is None or user_id != imp.user_id:
        return None
    return imp.undo_action_id if undo.can_undo(imp.dataset_id, user_id, imp.undo_action_id) else None
