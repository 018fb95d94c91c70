"""Where an import's files come from: an uploaded zip, uploaded loose files kept on disk, or a folder on
the server. Each source lists its entries (name, path parts for the class, declared size) and reads one
entry at a time, never more than the largest acceptable image file (MAX_IMAGE_BYTES).

Layout rules (also shown on the upload page), the same for zips and folders:
- `cats/x.jpg` -> class 'cats' (created when missing; matched ignoring letter case).
- Deeper folders count for their top-level folder: `cats/indoor/x.jpg` -> 'cats'.
- Files at the top level are imported unlabeled.
- If *everything* sits inside one wrapping folder with class folders beneath it
  (`pets/cats/x.jpg`, `pets/dogs/y.jpg`, as made by "compress folder"), the wrapper is ignored.
- `__MACOSX/` and hidden files (`.DS_Store`, `._x.jpg`) are ignored; zip entries with `../` or absolute
  paths are skipped with a message. Nothing is ever written outside STORAGE_DIR: entry names are only
  used as labels and file names, never as paths.
- One .csv file at the top level, or in a folder that holds every image, labels the images it names
  (zip_labels.py); it overrides their folder.
- A zip with more files than MAX_ZIP_FILES (folder entries do not count) or more uncompressed bytes than
  MAX_ZIP_UNCOMPRESSED (checked on the declared sizes, and again on the bytes actually read) is refused.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from app.i18n import N_, stored_line
from app.blueprints.datasets.images.intake import BadImage, ImportRefusal, check_size, too_big

CHUNK = 1024 * 1024
MANIFEST = "manifest.json"


class SourceRejected(ImportRefusal):
    """An import's source is refused as a whole (the job stores its line: imports' message_line)."""


class ZipRejected(SourceRejected):
    """The whole zip is refused (not a zip, too many files, too many bytes)."""


class EntryUnreadable(BadImage):
    """One zip entry cannot be read (damaged or encrypted)."""


@dataclass(frozen=True)
class Entry:
    """One file to import: its name for messages, its path parts (parts[0] is the class when there are
    two or more), its declared size, how to open it and the class a CSV of labels gives it."""

    name: str
    parts: tuple[str, ...]
    size: int
    open: Callable[[], BinaryIO]
    label: str | None = None


@dataclass
class Plan:
    """The entries to import and (name, message) for entries skipped while listing."""

    entries: list[Entry]
    skipped: list[tuple[str, dict]]  # (name, an app.i18n.stored_line)
    labels_file: Entry | None = None  # the CSV of labels, not imported itself


def entry_parts(name: str) -> list[str] | None:
    """Path parts of an entry name, or None when it is unsafe (absolute or climbing out with '..')."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return parts


def _ignored(parts: list[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _is_csv(entry: Entry) -> bool:
    return entry.parts[-1].lower().endswith(".csv")


def _holds_all(folder: tuple[str, ...], entries: list[Entry]) -> bool:
    return all(e.parts[:len(folder)] == folder for e in entries)


def _planned(entries: list[Entry], skipped: list[tuple[str, dict]]) -> Plan:
    """The plan of a zip or folder: its CSV of labels (one at the top or in a folder holding every image)
    set apart; two such CSVs are both skipped, as which one is meant cannot be told."""
    images = [e for e in entries if not _is_csv(e)]
    fitting = [e for e in entries if _is_csv(e) and _holds_all(e.parts[:-1], images)]
    if len(fitting) > 1:
        skipped = skipped + [(e.name, stored_line(N_("Not used: there is more than one CSV file of labels; "
                                                     "keep only one."))) for e in fitting]
    rest = [e for e in entries if e not in fitting]
    return Plan(_strip_wrapper(rest), skipped, fitting[0] if len(fitting) == 1 else None)


def _strip_wrapper(entries: list[Entry]) -> list[Entry]:
    if entries and all(len(e.parts) >= 3 for e in entries) and len({e.parts[0] for e in entries}) == 1:
        return [Entry(e.name, e.parts[1:], e.size, e.open) for e in entries]
    return entries


def read_capped(fh: BinaryIO, max_bytes: int, budget: "Budget | None" = None) -> bytes:
    """Read a stream, refusing it as soon as it is longer than max_bytes (memory stays bounded)."""
    chunks, total = [], 0
    while chunk := fh.read(min(CHUNK, max_bytes + 1 - total)):
        total += len(chunk)
        if budget is not None:
            budget.spend(len(chunk))
        if total > max_bytes:
            raise too_big(None, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def read_entry(entry: Entry, max_bytes: int, budget: "Budget | None" = None) -> bytes:
    """The entry's bytes; BadImage when it is (or declares to be) larger than max_bytes, without reading it."""
    check_size(entry.size, max_bytes)
    try:
        with entry.open() as fh:
            return read_capped(fh, max_bytes, budget)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, OSError):
        raise EntryUnreadable.because(N_("Skipped: this file is damaged or encrypted and could not be read.")) from None


class Budget:
    """Counts the bytes actually decompressed from a zip, whatever its entries declare."""

    def __init__(self, limit: int):
        self.left = limit

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise ZipRejected.because(N_("The zip unpacks to more bytes than allowed."))


# --- zips ----------------------------------------------------------------------------------------

def open_zip(path: str | Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise ZipRejected.because(N_("This .zip file is damaged or not a zip file.")) from None


def plan_zip(zf: zipfile.ZipFile, max_files: int, max_bytes: int) -> Plan:
    """Entries to import and skip messages; refuses the whole zip when over the limits."""
    files = [info for info in zf.infolist() if not info.is_dir()]
    if len(files) > max_files:
        raise ZipRejected.because(N_("The zip has %(count)s files; the limit is %(limit)s. Nothing was imported."),
                                  count=len(files), limit=int(max_files))
    if sum(i.file_size for i in files) > max_bytes:
        raise ZipRejected.because(
            N_("The zip unpacks to more than %(limit)s bytes, which is over the limit. Nothing was imported."),
            limit=int(max_bytes))
    entries, skipped = [], []
    for info in files:
        parts = entry_parts(info.filename)
        if parts is None:
            skipped.append((info.filename, stored_line(N_("Skipped: unsafe path (absolute or with '..')."))))
        elif parts and not _ignored(parts):
            entries.append(Entry("/".join(parts), tuple(parts), info.file_size, _zip_opener(zf, info)))
    return _planned(entries, skipped)


def _zip_opener(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], BinaryIO]:
    return lambda: zf.open(info)


# --- folders on the server, and uploaded loose files kept on disk --------------------------------

def plan_folder(root: str | Path) -> Plan:
    """Every regular file under `root` (symlinks are not followed), sorted, laid out like a zip."""
    root = Path(root)
    if not root.is_dir():
        raise SourceRejected.because(N_("%(folder)s is not a folder."), folder=str(root))
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(files):
            path = Path(folder) / name
            parts = path.relative_to(root).parts
            if _ignored(list(parts)) or not path.is_file() or path.is_symlink():
                continue
            entries.append(Entry("/".join(parts), tuple(parts), path.stat().st_size, _file_opener(path)))
    return _planned(entries, [])


def _file_opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: open(path, "rb")


def write_manifest(folder: Path, names: list[str], label: str | None = None) -> None:
    """Remember the original names of uploaded loose files stored as folder/0, folder/1, ... (and the
    class they all go to, when the upload chose one)."""
    (folder / MANIFEST).write_text(json.dumps({"names": names, "label": label} if label else names))


def plan_stored_files(folder: str | Path) -> Plan:
    """Uploaded loose files (stored by number, names in the manifest): unlabeled, or all of the manifest's
    class (a manifest that is a bare list of names: one written before classes could be chosen)."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    names, label = (manifest, None) if isinstance(manifest, list) else (manifest["names"], manifest.get("label"))
    entries = [Entry(name, (name,), (folder / str(i)).stat().st_size, _file_opener(folder / str(i)), label)
               for i, name in enumerate(names)]
    return Plan(entries, [])
