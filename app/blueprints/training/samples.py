"""A run's frozen sample list: built from the dataset when the run is queued, kept in run_samples.

The training run row keeps only a small summary (classes, images per class and split part), because
pages poll that row every second; the list itself (one row per image) is read by the worker that
trains the run, by a retry, and by the dataset health check's leak finder.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, insert, literal, select

from app.errors import ValidationError
from app.extensions import db
from app.models import Image, Label, RunSample, utcnow

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


def label_counts(dataset_id: int) -> dict[str, int]:
    """Labelled images per class name, in the dataset's class order (classes with 0 included)."""
    labels = db.session.scalars(
        select(Label).where(Label.dataset_id == dataset_id).order_by(Label.position, Label.id)).all()
    counts = dict(db.session.execute(
        select(Image.label_id, func.count()).where(Image.dataset_id == dataset_id, Image.label_id.is_not(None))
        .group_by(Image.label_id)).all())
    return {label.name: int(counts.get(label.id, 0)) for label in labels}


def build(dataset_id: int, options) -> FrozenSamples:
    """Classes, labelled samples and the frozen split of a dataset now.

    Classes without any labelled image are left out: a model cannot learn a class it never saw.
    Raises ValidationError with every problem when the dataset cannot train with these fractions.
    """
    from app.ml.data import check_trainable, stratified_split

    counts = label_counts(dataset_id)
    problems = check_trainable(counts, options.val_fraction, options.test_fraction)
    if problems:
        raise ValidationError("This dataset cannot be trained yet. " + " ".join(problems))
    labels = db.session.scalars(
        select(Label).where(Label.dataset_id == dataset_id).order_by(Label.position, Label.id)).all()
    classes = [label.name for label in labels if counts[label.name] > 0]
    index_of = {label.id: classes.index(label.name) for label in labels if counts[label.name] > 0}
    rows = [(image_id, index_of[label_id], sha) for image_id, label_id, sha in _driver_rows(
        select(Image.id, Image.label_id, Image.sha256)
        .where(Image.dataset_id == dataset_id, Image.label_id.is_not(None)).order_by(Image.id))]
    split = stratified_split([row[1] for row in rows], options.val_fraction, options.test_fraction, options.seed)
    return FrozenSamples(classes, rows, split)


def store(run_id: int, frozen: FrozenSamples) -> None:
    """Write the sample list of a run, committing every STORE_CHUNK rows."""
    part_of = ["train"] * len(frozen.rows)
    for part, positions in frozen.split.items():
        for position in positions:
            part_of[position] = part
    rows = [(run_id, position, image_id, class_index, sha, part)
            for position, ((image_id, class_index, sha), part) in enumerate(zip(frozen.rows, part_of))]
    for start in range(0, len(rows), STORE_CHUNK):
        _insert_tuples(RunSample.__table__, SAMPLE_COLUMNS, rows[start:start + STORE_CHUNK])
        db.session.commit()


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
    """Give run `to_run_id` the same frozen samples as `from_run_id` (a retry); returns how many."""
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
