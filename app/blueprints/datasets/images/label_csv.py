"""Reading a CSV of labels (Kaggle style: `id,label` or `filename,class`) into a table file -> class.

The columns come from the header (file/filename/image/id/path... and label/class/category/target, any
letter case), else the first two columns with no header. A CSV with fewer than two columns is refused;
one whose first row is no header it knows is only kept by the callers when some row names an image
(`unknown_header`). The file is read as a stream (never more than LABELS_CSV_MAX_BYTES); the table holds
one short string per file. A file listed twice with different classes gets neither (counted), rows with
an empty file name or class are counted, not kept.
"""
from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO, Callable

from app.blueprints.datasets.classes import clean_class_name
from app.blueprints.datasets.images.intake import ImportRefusal
from app.errors import ValidationError
from app.i18n import N_, PN_, stored_plural

FILE_COLUMNS = ("filename", "file_name", "file", "image", "image_id", "image_name", "img", "id", "path",
                "filepath", "file_path")
LABEL_COLUMNS = ("label", "class", "category", "target", "class_name", "label_name")
DELIMITERS = ",;\t"
MAX_CLASSES = 1000  # more different values than this: most likely not the label column
SHOWN_CELLS, SHOWN_CHARS = 5, 120  # of the first row, in a refusal


class CsvRefused(ImportRefusal):
    """A CSV of labels refused as a whole (not UTF-8 text, no rows, too big...): nothing is labeled."""


@dataclass
class LabelTable:
    """file key -> class name, and what the rows that gave no label were."""

    labels: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    empty: int = 0  # rows with an empty file name or class (or a class name that cannot be one)
    conflicts: int = 0  # files listed again with another class: not labeled
    header: bool = True  # False: no header known, the first two columns were read from the first row on
    first_row: str = ""  # as the refusals quote it


def path_key(value: str) -> str:
    """A file value as a comparable path: forward slashes, no leading './' or '/'."""
    value = value.strip().replace("\\", "/")
    while value.startswith("./"):
        value = value[2:]
    return value.lstrip("/")


def base_key(value: str) -> str:
    """Only the file's name (for matching images already in a dataset, stored by name)."""
    return PurePosixPath(path_key(value)).name


def stem(name: str) -> str:
    """The name without its extension ('0001.jpg' -> '0001'; a name without one stays as it is)."""
    head, dot, _ext = name.rpartition(".")
    return head if dot and head and "/" not in _ext else name


class _Capped(io.RawIOBase):
    """A binary stream that refuses to give more than `limit` bytes."""

    def __init__(self, raw: BinaryIO, limit: int):
        self.raw, self.left, self.limit = raw, limit, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(min(len(buffer), self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            raise CsvRefused.because(N_("The CSV file is larger than %(limit_bytes)s."), limit_bytes=self.limit)
        buffer[:len(data)] = data
        return len(data)


def _columns(first: list[str]) -> tuple[int, int, bool]:
    """(file column, label column, whether the first row is a header)."""
    names = [cell.strip().lstrip("\ufeff").lower() for cell in first]
    file_col = next((names.index(n) for n in FILE_COLUMNS if n in names), None)
    label_col = next((names.index(n) for n in LABEL_COLUMNS if n in names), None)
    if file_col is None and label_col is None:
        return 0, 1, False
    if file_col is None:
        file_col = 1 if label_col == 0 else 0
    if label_col is None:
        label_col = next((i for i in range(len(names)) if i != file_col), 1)
    return file_col, label_col, True


def _add(table: LabelTable, conflicting: set[str], key: str, label: str) -> None:
    if key in conflicting:
        return
    known = table.labels.setdefault(key, label)
    if known.lower() != label.lower():
        conflicting.add(key)
        table.conflicts += 1


def _usable_label(value: str) -> str | None:
    try:
        return clean_class_name(value)
    except ValidationError:
        return None


def _too_many_classes() -> CsvRefused:
    return CsvRefused.because(N_("The class column has more than %(limit)s different values; is it the right "
                                 "column?"), limit=MAX_CLASSES)


def _fill(table: LabelTable, rows, columns: tuple[int, int], key: Callable[[str], str]) -> None:
    conflicting: set[str] = set()
    classes: set[str] = set()
    file_col, label_col = columns
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        table.rows += 1
        name = path_key(row[file_col]) if len(row) > file_col else ""
        label = _usable_label(row[label_col]) if len(row) > label_col else None
        if not name or label is None:
            table.empty += 1
            continue
        _add(table, conflicting, key(name), label)
        classes.add(label.lower())
        if len(classes) > MAX_CLASSES:
            raise _too_many_classes()
    for name in conflicting:
        table.labels.pop(name, None)


def _quoted(row: list[str]) -> str:
    shown = ", ".join(cell.strip() for cell in row[:SHOWN_CELLS])
    return shown[:SHOWN_CHARS] + ("…" if len(row) > SHOWN_CELLS or len(shown) > SHOWN_CHARS else "")


def _read(text, table: LabelTable, key: Callable[[str], str]) -> None:
    first_line = text.readline()
    while first_line and not first_line.strip():  # blank lines before the first row
        first_line = text.readline()
    delimiter = max(DELIMITERS, key=first_line.count) if first_line else ","
    reader = csv.reader(itertools.chain([first_line], text), delimiter=delimiter)
    first = next(reader, [])
    table.first_row = _quoted(first)
    if len(first) == 1:
        raise CsvRefused.because(N_("The CSV file has only one column (%(first_row)s). Expected two columns: the "
                                    "file name and the class, e.g. a header “filename,label”."),
                                 first_row=table.first_row)
    file_col, label_col, table.header = _columns(first)
    _fill(table, reader if table.header else itertools.chain([first], reader), (file_col, label_col), key)


def read_label_table(stream: BinaryIO, max_bytes: int, key: Callable[[str], str] = path_key) -> LabelTable:
    """The table of a CSV of labels; CsvRefused when it is not UTF-8 CSV text, is too big, has one column
    or no rows."""
    text = io.TextIOWrapper(io.BufferedReader(_Capped(stream, max_bytes)), encoding="utf-8-sig", newline="")
    table = LabelTable()
    try:
        _read(text, table, key)
    except UnicodeDecodeError:
        raise CsvRefused.because(N_("The CSV file is not UTF-8 text. Save it as “CSV UTF-8” and try again.")) from None
    except csv.Error:
        raise CsvRefused.because(N_("The file could not be read as CSV.")) from None
    if table.rows == 0:
        raise CsvRefused.because(N_("The CSV file has no rows of labels."))
    return table


def unknown_header(table: LabelTable) -> CsvRefused:
    """The refusal of a table with no header known when no row names an image: what was read, what is
    expected (the caller decides whether any row does)."""
    return CsvRefused.because(N_("The first row (%(first_row)s) names no column this app knows, so the first two "
                                 "columns were read as the file name and the class, and no row names an image. "
                                 "Expected two columns: the file name and the class, e.g. a header "
                                 "“filename,label”."), first_row=table.first_row)


def problem_lines(table: LabelTable) -> list[dict]:
    """Stored lines for the rows that gave no label (none when every row was usable)."""
    lines = []
    if table.conflicts:
        lines.append(stored_plural(PN_("%(num)s file is listed more than once with different classes (not labeled).",
                                       "%(num)s files are listed more than once with different classes "
                                       "(not labeled)."), "num", num=table.conflicts))
    if table.empty:
        lines.append(stored_plural(PN_("%(num)s row has an empty file name or class.",
                                       "%(num)s rows have an empty file name or class."), "num", num=table.empty))
    return lines
