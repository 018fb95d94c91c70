"""A run's frozen sample list: frozen from the dataset when the run is queued, kept in run_samples.

"Start training" must answer at once at 200,000 images, yet train exactly the images labeled at that
moment (images added, deleted or relabeled a second later change nothing). So the request only freezes
(image id, class id) of every labeled image with one INSERT ... SELECT into run_frozen_images (narrow
rows, no index: about 50 ms at 200,000 on SQLite), and plans the summary from the per-class counts (the
split's sizes depend only on them). The training job then prepares the list (`prepare`, the run's
"Preparing the image list" phase, with progress): each image's file hash (from the image, or from the
undo trash when it was deleted since), the positions, the seeded stratified split, written to
run_samples in committed chunks; the frozen rows go once the list is complete. While frozen rows exist
they are the run's list (a retry copies them); run_samples is complete only once they are gone.

The training run row keeps only a small summary (classes, images per class and split part), because
pages poll that row every second; the list itself (one row per image) is read by the worker that
trains the run, by a retry, and by the dataset health check's leak finder.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import delete, func, insert, literal, select

from app.database import retry_write
from app.errors import ValidationError
from app.extensions import db
from app.i18n import PN_, stored_plural
from app.ml.errors import MLError, TrainingCancelled
from app.models import Image, Label, RunSample, TrashedImage, UndoAction, run_frozen_images, utcnow

# SQLAlchemy keeps an INSERT ... SELECT's rowcount only when asked (PostgreSQL's driver then says -1;
# SQLite's gave it anyway).
COUNTED = {"preserve_rowcount": True}

CHUNK = 2000  # rows per INSERT ... SELECT and per commit (a retry): no transaction holds the database for long
STORE_CHUNK = 20000  # rows per executemany and per commit when a run is queued: ~0.1 s of writing each


@dataclass
class FrozenSamples:
    """classes, rows [(image_id, class_index, sha256)] in position order, split {part: [positions]}."""

    classes: list[str]
    rows: list[tuple[int, int, str]]
    split: dict[str, list[int]]

    def summary(self) -> dict:
        """What the run row keeps: classes, [train, val, test] images per class, when it was taken."""
        return summarize(self.classes, [row[1] for row in self.rows], self.split)


def summarize(classes: list[str], class_of: list[int], split: dict) -> dict:
    """The small snapshot stored in training_runs.snapshot."""
    counts = [[0, 0, 0] for _ in classes]
    for column, part in enumerate(RunSample.PARTS):
        for position in split.get(part, []):
            counts[class_of[position]][column] += 1
    return {"classes": list(classes), "counts": counts, "total": len(class_of),
            "taken_at": utcnow().isoformat() + "Z"}


def _planned_counts(sizes: list[int], options) -> list[list[int]]:
    """[train, val, test] per class for classes of these sizes: what stratified_split will give (its
    sizes depend only on the class sizes and the fractions)."""
    from app.ml.data import _class_counts  # the split's own rule, so the plan cannot drift from it

    counts = []
    for size in sizes:
        n_val, n_test = _class_counts(size, options.val_fraction, options.test_fraction)
        counts.append([size - n_val - n_test, n_val, n_test])
    return counts


@dataclass
class Plan:
    """What a run will train on, known in the request from grouped counts (no per-image work): the run's
    summary, which names the classes and their class ids (the frozen rows' label_id -> class index)."""

    summary: dict

    @property
    def classes(self) -> list[str]:
        return self.summary["classes"]

    @property
    def total(self) -> int:
        return self.summary["total"]


def plan(dataset_id: int, options) -> Plan:
    """Classes with labelled images and the planned split sizes (ValidationError, with every problem, when
    the dataset cannot train with these fractions). Classes without images are left out: a model cannot
    learn a class it never saw."""
    from app.ml.data import check_trainable

    counts = label_counts(dataset_id)
    problems = check_trainable(counts, options.val_fraction, options.test_fraction)
    if problems:
        raise ValidationError("This dataset cannot be trained yet. " + " ".join(problems))
    labels = [label for label in db.session.execute(select(Label.id, Label.name).where(
        Label.dataset_id == dataset_id).order_by(Label.position, Label.id)).all() if counts[label.name] > 0]
    sizes = [counts[name] for _id, name in labels]
    summary = {"classes": [name for _id, name in labels], "counts": _planned_counts(sizes, options),
               "total": sum(sizes), "taken_at": utcnow().isoformat() + "Z", "label_ids": [i for i, _ in labels]}
    return Plan(summary)


def freeze(run_id: int, dataset_id: int) -> int:
    """Freeze (image id, class id) of every labelled image of the dataset for the run, in one statement
    (one consistent view of the dataset, no rows through Python); returns how many. The caller commits."""
    rows = select(literal(run_id), Image.id, Image.label_id).where(
        Image.dataset_id == dataset_id, Image.label_id.is_not(None))
    return db.session.execute(insert(run_frozen_images).from_select(
        ("run_id", "image_id", "label_id"), rows), execution_options=COUNTED).rowcount


def label_counts(dataset_id: int) -> dict[str, int]:
    """Labelled images per class name, in the dataset's class order (classes with 0 included)."""
    labels = db.session.scalars(
        select(Label).where(Label.dataset_id == dataset_id).order_by(Label.position, Label.id)).all()
    counts = dict(db.session.execute(
        select(Image.label_id, func.count()).where(Image.dataset_id == dataset_id, Image.label_id.is_not(None))
        .group_by(Image.label_id)).all())
    return {label.name: int(counts.get(label.id, 0)) for label in labels}


def store(run_id: int, frozen: FrozenSamples) -> None:
    """Write a whole sample list for a run, committing every STORE_CHUNK rows (runs made in tests and
    scripts; a started run's list is prepared by its job: `prepare`)."""
    _write(run_id, frozen.rows, frozen.split, lambda done, total: None, lambda: False)


# --- preparing the list in the training job -----------------------------------------------------

Progress = Callable[[int, int], None]


class ListNotReady(MLError):
    """The frozen list cannot become a sample list (images deleted for good since the run was started,
    or classes that no longer allow training): the run fails with this sentence."""


def has_frozen(run_id: int) -> bool:
    """Whether the run's list is still (or partly) only frozen: its run_samples are not complete."""
    return db.session.scalar(select(run_frozen_images.c.run_id).where(
        run_frozen_images.c.run_id == run_id).limit(1)) is not None


def _classes_of(run, frozen: list[tuple]) -> tuple[list[str], dict[int, int]]:
    """(class names, label id -> class index) for the frozen rows: the planned classes that have rows, in
    their order, then any class labelled in the moment between planning and freezing."""
    names = dict(zip((run.snapshot or {}).get("label_ids") or [], run.classes or []))
    present = {label_id for _image_id, label_id in frozen}
    extra = sorted(present - set(names))
    if extra:
        names.update(db.session.execute(select(Label.id, Label.name).where(Label.id.in_(extra))).all())
    kept = [label_id for label_id in names if label_id in present]
    return [names[label_id] for label_id in kept], {label_id: i for i, label_id in enumerate(kept)}


def _hashes(dataset_id: int, image_ids: list[int]) -> dict[int, str]:
    """image id -> file hash: from the images, else from the undo trash (deleted since the run started)."""
    found = dict(_driver_rows(select(Image.id, Image.sha256).where(
        Image.dataset_id == dataset_id, Image.id.between(image_ids[0], image_ids[-1]))))
    missing = {image_id for image_id in image_ids if image_id not in found}
    if missing:
        for sha, row in db.session.execute(select(TrashedImage.sha256, TrashedImage.row).join(
                UndoAction, UndoAction.id == TrashedImage.undo_id).where(UndoAction.dataset_id == dataset_id)):
            if row.get("id") in missing:
                found[row["id"]] = sha
    return found


def _checked(run, frozen: list[tuple]) -> tuple[list[str], list[int], list[str], list[int]]:
    """(classes, then per row: class index, file hash, image id); ListNotReady when they cannot train."""
    from app.ml.data import check_trainable
    from app.ml.options import TrainOptions

    classes, index_of = _classes_of(run, frozen)
    rows = [(image_id, index_of[label_id]) for image_id, label_id in frozen if label_id in index_of]
    options = TrainOptions.from_dict(run.options)
    counts = {name: 0 for name in classes}
    for _image_id, class_index in rows:
        counts[classes[class_index]] += 1
    problems = check_trainable(counts, options.val_fraction, options.test_fraction)
    if problems:
        raise ListNotReady("This dataset cannot be trained yet. " + " ".join(problems))
    hashes = _hashes(run.dataset_id, [image_id for image_id, _ in rows])
    gone = sum(1 for image_id, _ in rows if image_id not in hashes)
    if gone:
        raise ListNotReady.saying(stored_plural(PN_(
            "%(num)s image this run was started with was deleted for good before its training began, so "
            "it cannot train on the images it was started with. Start a new training.",
            "%(num)s images this run was started with were deleted for good before its training began, so "
            "it cannot train on the images it was started with. Start a new training."), "num", num=gone))
    return classes, [c for _, c in rows], [hashes[image_id] for image_id, _ in rows], [i for i, _ in rows]


def prepare(run, progress: Progress, should_cancel: Callable[[], bool], retry_s: float = 0.0) -> bool:
    """Turn the run's frozen rows into its sample list (see the module doc), committing every STORE_CHUNK
    rows with progress(done, total); False when there is nothing to prepare (a list prepared before).
    Each write retries a busy database for `retry_s` seconds. Cancelled (TrainingCancelled) or failing,
    the rows written are removed: the frozen rows stay the run's list."""
    from app.ml.data import stratified_split
    from app.ml.options import TrainOptions

    frozen = _driver_rows(select(run_frozen_images.c.image_id, run_frozen_images.c.label_id).where(
        run_frozen_images.c.run_id == run.id).order_by(run_frozen_images.c.image_id))
    db.session.commit()  # end the read transaction
    if not frozen:
        return False
    classes, class_of, hashes, image_ids = _checked(run, frozen)
    options = TrainOptions.from_dict(run.options)
    split = stratified_split(class_of, options.val_fraction, options.test_fraction, options.seed)
    _retried(lambda: _clear(run.id), retry_s, run.id)  # rows of a try cut short before
    try:
        _write(run.id, list(zip(image_ids, class_of, hashes)), split, progress, should_cancel, retry_s)
    except BaseException:
        db.session.rollback()
        _retried(lambda: _clear(run.id), retry_s, run.id)
        raise

    def complete() -> None:
        db.session.execute(delete(run_frozen_images).where(run_frozen_images.c.run_id == run.id))
        run.classes, run.snapshot = classes, summarize(classes, class_of, split)
        db.session.commit()
    _retried(complete, retry_s, run.id)
    return True


def _retried(write: Callable[[], None], retry_s: float, run_id: int) -> None:
    retry_write(write, retry_s, f"sample list of run {run_id}")


def _clear(run_id: int) -> None:
    db.session.execute(delete(RunSample).where(RunSample.run_id == run_id))
    db.session.commit()


def _write(run_id: int, rows: list[tuple[int, int, str]], split: dict, progress: Progress,
           should_cancel: Callable[[], bool], retry_s: float = 0.0) -> None:
    part_of = ["train"] * len(rows)
    for part, positions in split.items():
        for position in positions:
            part_of[position] = part
    tuples = [(run_id, position, image_id, class_index, sha, part)
              for position, ((image_id, class_index, sha), part) in enumerate(zip(rows, part_of))]
    progress(0, len(tuples))
    for start in range(0, len(tuples), STORE_CHUNK):
        if should_cancel():
            raise TrainingCancelled("Training was cancelled.")

        def write_chunk(chunk=tuples[start:start + STORE_CHUNK]) -> None:
            _insert_tuples(RunSample.__table__, SAMPLE_COLUMNS, chunk)
            db.session.commit()
        _retried(write_chunk, retry_s, run_id)
        progress(min(len(tuples), start + STORE_CHUNK), len(tuples))


SAMPLE_COLUMNS = ("run_id", "position", "image_id", "class_index", "sha256", "part")


def _driver_cursor():
    """A cursor of the database driver on the session's connection (inside its transaction): at 200,000
    rows SQLAlchemy's per-row work (parameter dicts going in, Row objects coming out) costs more than
    the database does."""
    return db.session.connection().connection.cursor()


def _driver_rows(statement) -> list[tuple]:
    """All rows of a SELECT, as the driver returns them."""
    connection = db.session.connection()
    compiled = statement.compile(dialect=connection.dialect)
    params = compiled.params if not compiled.positiontup else tuple(compiled.params[k] for k in compiled.positiontup)
    cursor = _driver_cursor()
    try:
        cursor.execute(str(compiled), params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _insert_tuples(table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """INSERT rows (tuples in `columns` order) with one executemany of the driver."""
    if not rows:
        return
    mark = "?" if db.session.connection().dialect.paramstyle == "qmark" else "%s"
    cursor = _driver_cursor()
    try:
        cursor.executemany(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                           f"VALUES ({', '.join([mark] * len(columns))})", rows)
    finally:
        cursor.close()


def copy(from_run_id: int, to_run_id: int) -> int:
    """Give run `to_run_id` the same frozen samples as `from_run_id` (a retry); returns how many. A list
    not prepared yet (the run never began training) is copied as its frozen rows, prepared in turn."""
    if has_frozen(from_run_id):
        frozen = run_frozen_images.c
        return db.session.execute(insert(run_frozen_images).from_select(
            ("run_id", "image_id", "label_id"), select(literal(to_run_id), frozen.image_id, frozen.label_id)
            .where(frozen.run_id == from_run_id)), execution_options=COUNTED).rowcount
    total = db.session.scalar(select(func.count()).where(RunSample.run_id == from_run_id)) or 0
    columns = ("run_id", "position", "image_id", "class_index", "sha256", "part")
    for start in range(0, total, CHUNK):
        rows = select(literal(to_run_id), RunSample.position, RunSample.image_id, RunSample.class_index,
                      RunSample.sha256, RunSample.part).where(
            RunSample.run_id == from_run_id, RunSample.position >= start, RunSample.position < start + CHUNK)
        db.session.execute(insert(RunSample).from_select(columns, rows))
        db.session.commit()
    return total


def load(run_id: int) -> tuple[list[tuple[int, int, str]], dict[str, list[int]]]:
    """(rows [(image_id, class_index, sha256)] by position, split {part: [positions]}) of a run."""
    rows, split = [], {part: [] for part in RunSample.PARTS}
    result = db.session.execute(
        select(RunSample.position, RunSample.image_id, RunSample.class_index, RunSample.sha256, RunSample.part)
        .where(RunSample.run_id == run_id).order_by(RunSample.position))
    for position, image_id, class_index, sha, part in result:
        if position != len(rows):
            raise ValueError(f"run {run_id}: sample positions are not 0..n-1 (found {position} at {len(rows)})")
        rows.append((image_id, class_index, sha))
        split[part].append(position)
    return rows, split


def parts(run_id: int, names: tuple[str, ...]) -> dict[str, list[tuple[int, str]]]:
    """{part: [(image_id, sha256)]} for the named split parts of a run, in position order."""
    found: dict[str, list[tuple[int, str]]] = {name: [] for name in names}
    for image_id, sha, part in db.session.execute(
            select(RunSample.image_id, RunSample.sha256, RunSample.part)
            .where(RunSample.run_id == run_id, RunSample.part.in_(names)).order_by(RunSample.position)):
        found[part].append((image_id, sha))
    return found
