"""A zip's (or folder's) CSV of labels applied to its entries, before the import reads any of them.

A row names a file by its path (from the zip's top, from the CSV's folder, or below a wrapping folder)
or by its base name, with or without the extension. A row that fits several files labels none of them
(counted as ambiguous). Images the CSV does not name keep the folder-per-class rule, except when every
image sits in one folder (Kaggle's `train/`): that folder is where the images are, not a class. A CSV
that cannot be used (one column; no header known and no row that names a file) leaves the entries as
they are, and the import's message says why.
Memory: the table (one short string per row) and one key per entry, never an image's bytes.
"""
from __future__ import annotations

import zipfile
from collections import Counter
from dataclasses import replace

from app.blueprints.datasets.images.label_csv import (
    CsvRefused, LabelTable, problem_lines, read_label_table, stem, unknown_header,
)
from app.blueprints.datasets.images.sources import Entry, Plan
from app.i18n import N_, PN_, stored_join, stored_line, stored_plural


def _keys(entry: Entry, csv_folder: str) -> list[str]:
    """Ways a row may name this entry, most precise first."""
    paths = [entry.name, "/".join(entry.parts)]
    if csv_folder and entry.name.startswith(csv_folder + "/"):
        paths.append(entry.name[len(csv_folder) + 1:])
    base = entry.parts[-1]
    return list(dict.fromkeys(paths + [stem(p) for p in paths] + [base, stem(base)]))


def _first_hits(entries: list[Entry], table: LabelTable, csv_folder: str) -> list[str | None]:
    """For each entry, the most precise of its keys that a row names (None when no row does)."""
    return [next((k for k in _keys(e, csv_folder) if k in table.labels), None) for e in entries]


def _flatten(entries: list[Entry]) -> list[Entry]:
    """Every image in one folder: that folder is not a class once a CSV labels them."""
    if entries and all(len(e.parts) >= 2 for e in entries) and len({e.parts[0] for e in entries}) == 1:
        return [replace(e, parts=e.parts[1:]) for e in entries]
    return entries


def label_entries(plan: Plan, table: LabelTable) -> tuple[Plan, dict]:
    """The plan with the CSV's classes on its entries, and the stored line that reports on the rows."""
    csv_folder = "/".join(plan.labels_file.parts[:-1])
    hits = _first_hits(plan.entries, table, csv_folder)
    if not table.header and not any(hits):
        return plan, _not_used(plan, unknown_header(table))
    uses = Counter(k for k in hits if k is not None)
    entries, labeled = [], 0
    for entry, key in zip(_flatten(plan.entries), hits):
        if key is not None and uses[key] == 1:
            entry, labeled = replace(entry, label=table.labels[key]), labeled + 1
        entries.append(entry)
    ambiguous = sum(1 for n in uses.values() if n > 1)
    report = _report(plan.labels_file.name, table, labeled, len(table.labels) - len(uses), ambiguous)
    return Plan(entries, plan.skipped, plan.labels_file), report


def _report(name: str, table: LabelTable, labeled: int, unmatched: int, ambiguous: int) -> dict:
    # named, not labeled: the import may still skip a file (a duplicate, not an image)
    lines = [stored_plural(PN_("%(name)s names %(num)s file of the zip with its class (the image gets it if added).",
                               "%(name)s names %(num)s files of the zip with their class (the images added get "
                               "it)."), "num", name=name, num=labeled)]
    if unmatched:
        lines.append(stored_plural(PN_("%(num)s row names a file that is not in the zip.",
                                       "%(num)s rows name a file that is not in the zip."), "num", num=unmatched))
    if ambiguous:
        lines.append(stored_plural(PN_("%(num)s row fits several files (not labeled).",
                                       "%(num)s rows fit several files (not labeled)."), "num", num=ambiguous))
    return stored_join(*lines, *problem_lines(table))


def _not_used(plan: Plan, err: CsvRefused) -> dict:
    return stored_line(N_("%(name)s was not used for labels: %(why_word)s"), name=plan.labels_file.name,
                       why_word=err.line)


def apply_labels_file(plan: Plan, max_bytes: int) -> tuple[Plan, dict | None]:
    """Read the plan's CSV of labels (if it has one) and label its entries; a CSV that cannot be used
    leaves the entries as they are, and the report says why."""
    if plan.labels_file is None:
        return plan, None
    try:
        with plan.labels_file.open() as fh:
            table = read_label_table(fh, max_bytes)
    except CsvRefused as err:
        return plan, _not_used(plan, err)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError):  # a damaged or encrypted zip entry
        return plan, stored_line(N_("%(name)s was not used for labels: it could not be read."),
                                 name=plan.labels_file.name)
    return label_entries(plan, table)
