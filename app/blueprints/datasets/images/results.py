"""What happened to each uploaded file or zip entry, and the one-sentence summary of a batch."""
from __future__ import annotations

from dataclasses import asdict, dataclass

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
        return "No files were sent. Choose one or more images or a .zip file."
    parts = [f"{counts[ADDED]} image{'s' if counts[ADDED] != 1 else ''} added"]
    if counts[DUPLICATE]:
        parts.append(f"{counts[DUPLICATE]} duplicate{'s' if counts[DUPLICATE] != 1 else ''} skipped")
    if counts[ERROR]:
        parts.append(f"{counts[ERROR]} file{'s' if counts[ERROR] != 1 else ''} could not be used")
    return ", ".join(parts) + "."
