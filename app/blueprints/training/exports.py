"""A run's split and per-epoch history for experts: the split page (paged by key), and CSV downloads
of the split (every image id, file name, class and part) and of the history.

The split comes from run_samples (the frozen list the run trained on, in position order); file names
from the images table, so an image deleted since shows an empty name. Large splits stream in chunks:
200,000 images never sit in memory at once.
"""
from __future__ import annotations

import csv
import io
from typing import Iterator

from sqlalchemy import and_, select
from flask_babel import gettext as _

from app.access import get_run_for
from app.blueprints.training.results import history_table
from app.errors import ValidationError
from app.extensions import db
from app.i18n import N_
from app.models import Image, RunSample, TrainingRun, User

PAGE = 100
CHUNK = 2000
PART_NAMES = {"train": N_("train (learn from)"), "val": N_("validation (pick the epoch, threshold, ranking)"),
              "test": N_("test (only reported)")}
SPLIT_COLUMNS = ("position", "image_id", "filename", "class", "part")


def _rows(run: TrainingRun, after: int, limit: int, part: str | None = None):
    """(position, image_id, filename or '', class_index, part) of the run's samples after `after`."""
    query = (select(RunSample.position, RunSample.image_id, Image.filename, RunSample.class_index, RunSample.part)
             .outerjoin(Image, and_(Image.id == RunSample.image_id, Image.dataset_id == run.dataset_id))
             .where(RunSample.run_id == run.id, RunSample.position > after)
             .order_by(RunSample.position).limit(limit))
    if part is not None:
        query = query.where(RunSample.part == part)
    return db.session.execute(query).all()


def split_page(user: User, run_id: int, part: str | None, after: int | None) -> dict:
    """One page of a part of the split: {run, part, rows [{position, image_id, filename, class}],
    next_after (None on the last page), sizes}."""
    run = get_run_for(user, run_id, need="viewer")
    part = part or "test"
    if part not in PART_NAMES:
        raise ValidationError(_("Choose train, val or test."))
    found = _rows(run, after if after is not None else -1, PAGE + 1, part)
    classes = list(run.classes or [])
    rows = [{"position": p, "image_id": i, "filename": name or "", "class": _class(classes, c)}
            for p, i, name, c, _part in found[:PAGE]]
    counts = (run.snapshot or {}).get("counts") or []
    sizes = {name: sum(c[k] for c in counts) for k, name in enumerate(("train", "val", "test"))}
    parts = {key: _(name) for key, name in PART_NAMES.items()}
    return {"run": run, "part": part, "rows": rows, "parts": parts, "sizes": sizes,
            "next_after": rows[-1]["position"] if len(found) > PAGE else None}


def _class(classes: list[str], index: int) -> str:
    return classes[index] if 0 <= index < len(classes) else str(index)


def split_csv(user: User, run_id: int) -> tuple[str, Iterator[str]]:
    """(download name, CSV text chunks) of the whole split, read CHUNK rows at a time."""
    run = get_run_for(user, run_id, need="viewer")
    return f"split-model-{run.id}.csv", _split_chunks(run, list(run.classes or []))


def _split_chunks(run: TrainingRun, classes: list[str]) -> Iterator[str]:
    yield _csv_line(SPLIT_COLUMNS)
    after = -1
    while True:
        rows = _rows(run, after, CHUNK)
        if not rows:
            return
        yield "".join(_csv_line((p, i, name or "", _class(classes, c), part)) for p, i, name, c, part in rows)
        after = rows[-1][0]
        db.session.commit()  # end the read transaction between chunks


def history_csv(user: User, run_id: int) -> tuple[str, str]:
    """(download name, CSV text) of the run's per-epoch history."""
    run = get_run_for(user, run_id, need="viewer")
    history = run.history or []
    keys = history_table(history)["keys"]
    rows = [{**row, "lr_head": row.get("lr_head", row.get("lr"))} for row in history]
    body = _csv_line(keys) + "".join(_csv_line(["" if row.get(k) is None else row[k] for k in keys]) for row in rows)
    return f"history-model-{run.id}.csv", body


def _csv_line(values) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()
