"""A model's downloads: each file alone under the model's name (NAME.onnx, ...), or all of them in one zip
under the names its card lists (model.onnx, ...). The card and preprocess.py are made when downloaded:
the card carries the confidence threshold set on the model's page since training, and preprocess.py is
the current reference (the one that applies it) whatever the model's age."""
from __future__ import annotations

import json
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import Iterator

from flask import Response, stream_with_context
from flask_babel import gettext as _

from app.access import get_run_for
from app.blueprints.datasets.images.exports import ZipSink  # the dataset export's streaming sink
from app.errors import NotFound
from app.filestore import run_key
from app.ml.artifacts import CARD, DOWNLOADS, FILES, PREPROCESS, README, ZIP_KIND
from app.ml.reference import source_from_card, with_threshold
from app.models import TrainingRun, User
from app.storage import attachment_headers, download_response, get_storage

CHUNK = 1 << 20
MADE_NOW = {CARD, PREPROCESS}  # made at download time; the other files are streamed from storage
STEM_LIMIT = 60

README_TEXT = """{name}

The model's files, under the names model_card.json lists in "files":
  model.onnx              the model for ONNX Runtime (input "input", output "logits")
  model.torchscript.pt    the same model for torch.jit.load
  model.pt                its PyTorch state_dict
  model_card.json         classes, input steps, scores and the confidence threshold
  preprocess.py           the exact input the studio's POST /predict gives the model (Pillow + numpy)

Run it on your images:
  pip install onnxruntime pillow numpy
  python preprocess.py model.onnx photo.jpg [more.jpg ...]

It prints one JSON line per image, the answer /predict gives. {threshold_line}
--threshold 0.9 sets another threshold, --threshold 0 answers always.

The checkpoint (to continue training) is a separate download on the model's page.
"""


@dataclass(frozen=True)
class _Entry:
    """One file of the zip: a stored one (key, size) or one made now (body)."""

    name: str
    key: str | None = None
    size: int = 0
    body: bytes = b""


@dataclass(frozen=True)
class Download:
    """One file to send: a stored one (key) streamed from storage, or one made now (body)."""

    name: str
    mimetype: str
    key: str | None = None
    body: bytes = b""


def file_stem(run: TrainingRun) -> str:
    """The model's name as a file name, then "model-<id>" as its other downloads say (history-model-3.csv):
    letters and digits of any script kept, each run of anything else one '-' ("Hymenoptera · Quick ·
    2026-11-27 (2)" -> "Hymenoptera-Quick-2026-11-27-2-model-3"; "·/·" -> "model-3")."""
    text = unicodedata.normalize("NFC", run.name)
    kept = "".join(c if c == "_" or unicodedata.category(c)[0] in "LNM" else "-" for c in text)
    name = re.sub(r"-{2,}", "-", kept).strip("-")[:STEM_LIMIT].rstrip("-")
    # the word keeps a numbered name's "-2" apart from the id: "…-2-5" read as one number
    return f"{name}-model-{run.id}" if name else f"model-{run.id}"


def response(user: User, run_id: int, kind: str) -> Response:
    """The HTTP answer of a download (the page's and the API's): a stored file streamed from storage, one
    made now, or the zip (ZIP_KIND)."""
    if kind == ZIP_KIND:
        name, chunks = model_zip(user, run_id)
        return Response(stream_with_context(chunks), mimetype="application/zip", headers=attachment_headers(name))
    item = model_file(user, run_id, kind)
    if item.key is None:
        return Response(item.body, mimetype=item.mimetype, headers=attachment_headers(item.name))
    return download_response(item.key, item.name, item.mimetype)


def model_file(user: User, run_id: int, kind: str) -> Download:
    """One download of a succeeded run's files (artifacts.DOWNLOADS); NotFound when there is none."""
    run = _run_with_files(user, run_id)
    if kind not in DOWNLOADS:
        raise NotFound(_("There is no such download."))
    filename, suffix, mimetype = DOWNLOADS[kind]
    name = file_stem(run) + suffix
    if filename in MADE_NOW:
        return Download(name, mimetype, body=_made_now(run, filename, _card(run)))
    key = run_key(run.id, filename)
    if not get_storage().exists(key):
        raise NotFound(_("This file is missing from storage."))
    return Download(name, mimetype, key=key)


def model_zip(user: User, run_id: int) -> tuple[str, Iterator[bytes]]:
    """(file name, chunks) of the "Download all" zip: the files in a folder named after the model,
    under the card's names, with README.txt. Every file is checked before the first byte is sent."""
    run = _run_with_files(user, run_id)
    stem, storage, card = file_stem(run), get_storage(), _card(run)
    entries = []
    for filename in FILES.values():
        if filename in MADE_NOW:
            entries.append(_Entry(filename, body=_made_now(run, filename, card)))
            continue
        try:
            entries.append(_Entry(filename, run_key(run.id, filename), storage.size(run_key(run.id, filename))))
        except FileNotFoundError:
            raise NotFound(_("This file is missing from storage.")) from None
    entries.append(_Entry(README, body=_readme(run)))
    when = (run.finished_at or run.created_at).timetuple()[:6]
    return f"{stem}.zip", _zip_chunks(stem, entries, storage, when)


def _run_with_files(user: User, run_id: int) -> TrainingRun:
    run = get_run_for(user, run_id, need="viewer")
    if run.status != "succeeded" or not run.artifact_dir:
        raise NotFound(_("This model has no files yet: its training has not succeeded."))
    return run


def _card(run: TrainingRun) -> dict:
    try:
        card = json.loads(get_storage().read(run_key(run.id, CARD)))
    except FileNotFoundError:
        raise NotFound(_("This file is missing from storage.")) from None
    return with_threshold(card, run.threshold)


def _made_now(run: TrainingRun, filename: str, card: dict) -> bytes:
    """preprocess.py or the card (with a line saying how the files are named where)."""
    if filename == PREPROCESS:
        return source_from_card(card).encode()
    stem, suffixes = file_stem(run), {stored: suffix for stored, suffix, _mimetype in DOWNLOADS.values()}
    singles = ", ".join(stem + suffixes[stored] for stored in FILES.values())
    note = f"These are the names inside {stem}.zip (Download all); downloaded one by one, the files are {singles}."
    return (json.dumps({**card, "files_note": note}, indent=2) + "\n").encode()


def _readme(run: TrainingRun) -> bytes:
    if run.threshold is None:
        line = "The model has no confidence threshold: every image gets the most likely category."
    else:
        line = (f"Below the model's confidence threshold, {run.threshold:g} ({run.threshold * 100:g}%: "
                "model_card.json \"threshold\"), the category is null and \"unknown\" true.")
    return README_TEXT.format(name=run.name, threshold_line=line).encode()


def _zip_entry(name: str, when: tuple, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=when)
    info.compress_type = compress
    info.external_attr = 0o644 << 16  # without it unzip makes the files unreadable (mode 000)
    return info


def _zip_chunks(folder: str, entries: list[_Entry], storage, when: tuple) -> Iterator[bytes]:
    """The zip, chunk by chunk: a stored file is read CHUNK bytes at a time and stored as it is (weights
    barely compress); the small files made now are deflated."""
    sink = ZipSink()
    with zipfile.ZipFile(sink, "w") as zf:
        for entry in entries:
            if entry.key is None:
                zf.writestr(_zip_entry(f"{folder}/{entry.name}", when, zipfile.ZIP_DEFLATED), entry.body)
            else:
                info = _zip_entry(f"{folder}/{entry.name}", when, zipfile.ZIP_STORED)
                info.file_size = entry.size  # zipfile decides on zip64 from it
                with storage.open(entry.key) as src, zf.open(info, "w") as dst:
                    while chunk := src.read(CHUNK):
                        dst.write(chunk)
                        yield sink.drain()
            yield sink.drain()
    yield sink.drain()
