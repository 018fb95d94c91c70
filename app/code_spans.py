"""Inline `code` in text written for people (messages, the API's descriptions): shown as <code>."""
from __future__ import annotations

import re

from markupsafe import Markup, escape

_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(text: str | None) -> Markup:
    """`text` escaped, with each `...` span (Markdown's inline code) as <code>...</code>; nothing else
    is interpreted, so whatever the text holds is shown as written. Markup (a template's _() with its
    values already escaped) is taken as it is, not escaped twice."""
    if not text:
        return Markup("")
    safe = hasattr(text, "__html__")
    as_html = Markup if safe else escape
    parts = _SPAN.split(text.__html__() if safe else str(text))  # odd indexes: the insides of code spans
    return Markup("").join(as_html(part) if i % 2 == 0 else Markup("<code>") + as_html(part) + Markup("</code>")
                           for i, part in enumerate(parts))
