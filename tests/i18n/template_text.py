"""Finds user-visible English in templates that does not go through gettext (a simple extraction check).

Text between tags and the values of attributes people read (title, alt, placeholder, aria-label,
data-confirm, hx-confirm, ...) are checked after {% trans %} blocks, {{ expressions }}, {% tags %}, comments,
scripts and styles are taken out; string literals inside expressions are checked too, unless they are
the argument of _()/ngettext()."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READ_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "data-confirm", "hx-confirm", "label",
                   "data-default", "aria-description"}
# Text that is the same in every language: names of formats, products and the brand.
SAME_EVERYWHERE = {"◧ Studio", "· Studio", "Studio", "ONNX", "TorchScript", "preprocess.py", "PyTorch state_dict", "F1", "F1³",
                   "POST /predict", "curl", "JSON", "CSV", "URL", "ID", "HTTP", "OpenAPI", "rq-dashboard", "RQ",
                   "EN", "PT", "ES", "Redis", "PyTorch", "MB", "· MB", "ImageNet top-1"}
WORD = re.compile(r"[A-Za-z]{2,}")
TRANS = re.compile(r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}", re.S)
COMMENT = re.compile(r"{#.*?#}", re.S)
EXPRESSION = re.compile(r"{{.*?}}|{%.*?%}", re.S)
SCRIPT = re.compile(r"<(script|style|svg|pre|code|kbd)\b.*?</\1>", re.S)  # code reads the same everywhere
GETTEXT_CALL = re.compile(r"\b(?:_|gettext|ngettext)\(\s*(?:'[^']*'|\"[^\"]*\")(?:\s*,\s*(?:'[^']*'|\"[^\"]*\"))?")
LITERAL = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"")
PROSE_LITERAL = re.compile(r"^(?=.*[A-Za-z]{2}).*(\s[A-Za-z]|^[A-Z][a-z]+$|[.?!:…]$)")


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value:
                self.found.append(value)

    def handle_data(self, data):
        self.found.append(data)


def template_files() -> list[Path]:
    files = sorted((ROOT / "app" / "templates").rglob("*.html"))
    files += sorted(p for p in (ROOT / "app" / "blueprints").rglob("templates/**/*.html"))
    return [p for p in files if "rq_dashboard" not in p.parts]  # rq-dashboard's own (English-only) pages


def untranslated(source: str) -> list[str]:
    """The pieces of English a reader would see that are not marked for translation."""
    source = COMMENT.sub(" ", TRANS.sub(" ", source))
    problems = []
    for expr in EXPRESSION.findall(source):
        rest = GETTEXT_CALL.sub("_(", expr)
        for single, double in LITERAL.findall(rest):
            text = single or double
            if PROSE_LITERAL.search(text) and not _is_code(text):
                problems.append(text)
    markup = SCRIPT.sub(" ", EXPRESSION.sub(" ", source))
    parser = _Text()
    parser.feed(markup)
    for chunk in parser.found:
        text = " ".join(chunk.split())
        if WORD.search(text) and text not in SAME_EVERYWHERE:
            problems.append(text)
    return problems


def _is_code(text: str) -> bool:
    """Literals that are code, not prose: endpoints, CSS classes, formats, file names, filters."""
    if re.fullmatch(r"[A-Z][a-z]+", text):  # 'Datasets', 'Label': a word people read
        return False
    if re.fullmatch(r"[\s;]*[a-z-]+\s*:\s*", text):  # a CSS property being built: '; color: '
        return True
    return bool(re.fullmatch(r"[\w.\-/:%#|=\[\] ]*", text)) and not re.search(r"[A-Z][a-z]+ [a-z]", text) and (
        " " not in text.strip() or re.fullmatch(r"[\w\-]+( [\w\-]+)*", text) and text.islower())
