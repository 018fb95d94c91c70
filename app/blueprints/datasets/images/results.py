"""What happened to each uploaded file or zip entry, and the one-sentence summary of a batch."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from flask_babel import gettext as _

from app.i18n import ngettext

ADDED, DUPLICATE, ERROR = "added", "duplicate", "error"


@dataclass
class FileResult:
    """What happened to one uploaded file (or one zip entry)."""

    filename: str
    status: str  # added | duplicate | error
    message: str = ""
    label: str | None = None
    image_id: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def summarize_results(results: list[FileResult]) -> str:
    """One plain sentence: '3 images added, 1 duplicate skipped, 2 files could not be used.'"""
    counts = {s: sum(1 for r in results if r.status == s) for s in (ADDED, DUPLICATE, ERROR)}
    if not results:
        return _("No files were sent. Choose one or more images or a .zip file.")
    parts = [ngettext("%(num)s image added", "%(num)s images added", counts[ADDED])]
    if counts[DUPLICATE]:
        parts.append(ngettext("%(num)s duplicate skipped", "%(num)s duplicates skipped", counts[DUPLICATE]))
    if counts[ERROR]:
        parts.append(ngettext("%(num)s file could not be used", "%(num)s files could not be used", counts[ERROR]))
    return ", ".join(parts) + "."
