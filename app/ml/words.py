"""Sentences the library writes for people (a run's log, its results page): the English text, plus the
template and values with which the web app shows them in the reader's language (app.i18n.stored_text).

Templates are marked with N_, an identity that Babel's extraction reads (the web app holds the
catalogs). Value names say how a value is written: *_pct a fraction as a whole percentage, *_pct1 with
one decimal, *_s seconds with one decimal, *_bytes a size with its unit (size_text), *_sci a small number in
scientific notation (2.34e-05), *_word a text of the catalog (N_-marked too), whole numbers with thousands
separators, other numbers as Python writes them (the reader's decimal sign where shown); a value that is
itself a line is written as that line."""
from __future__ import annotations


def N_(message: str) -> str:
    """Marks a template for extraction; it is translated where it is shown."""
    return message


def line(template: str, **values) -> dict:
    """{"message": English text, "key": template, "values": values}."""
    return {"message": template % {name: english_value(name, value) for name, value in values.items()},
            "key": template, "values": values}


def joined(*lines: dict) -> dict:
    """Several lines said as one text, a space between them (shown part by part in the reader's language,
    as app.i18n.stored_join)."""
    return {"message": " ".join(said["message"] for said in lines), "parts": list(lines)}


def english_value(name: str, value):
    if isinstance(value, dict):
        return value.get("message", "")
    if name.endswith("_pct1"):
        return f"{float(value):.1%}"
    if name.endswith("_pct"):
        return f"{float(value):.0%}"
    if name.endswith("_s"):
        return f"{float(value):.1f}"
    if name.endswith("_bytes"):
        return size_text(int(value))
    if name.endswith("_sci"):
        return f"{float(value):.2e}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return value


SIZE_UNITS = ((0.1 * 2**20, 2**20, "MB"), (1024, 1024, "KB"))


def size_parts(size: int) -> tuple[float | int, str]:
    """A file size as (number, unit): MB with one decimal, KB under 0.1 MB (a 5 KB file is not "0.0 MB"),
    bytes under 1 KB."""
    for least, unit_bytes, unit in SIZE_UNITS:
        if size >= least:
            return round(size / unit_bytes, 1), unit
    return int(size), "B"


def size_text(size: int) -> str:
    """A file size with its unit, written the English way (12.3 MB)."""
    number, unit = size_parts(size)
    return f"{number:.1f} {unit}" if unit != "B" else f"{number} {unit}"
