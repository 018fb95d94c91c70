"""Languages: which one a request is answered in, the locale-aware Jinja filters, the JS catalog.

The order: the language chosen with the header's switcher (saved on the account when logged in, a
cookie otherwise) > the browser's Accept-Language > English. The JSON API never goes through here: its
messages stay English (select_locale answers "en" for API paths, except the reference page /api/docs).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from babel import Locale, numbers
from flask import Flask, has_request_context, request
from flask_babel import Babel, format_datetime, get_locale, gettext, refresh

from app.code_spans import code_spans

# Locale code -> the language's own name (shown in the switcher, never translated).
LANGUAGES = {"en": "English", "pt_BR": "Português (Brasil)", "es": "Español"}
SHORT_NAMES = {"en": "EN", "pt_BR": "PT", "es": "ES"}
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "lang"
LANG_COOKIE_AGE = 365 * 24 * 3600
# A browser's language tag's first part -> our locale (pt-PT and pt-BR readers get Brazilian Portuguese).
PRIMARY_TAGS = {"en": "en", "pt": "pt_BR", "es": "es"}

babel = Babel()


def normalise_language(value: str | None) -> str | None:
    """'pt-BR', 'pt_br', 'pt' -> 'pt_BR'; None for a language we do not speak."""
    if not value:
        return None
    tag = value.strip().replace("-", "_")
    for code in LANGUAGES:
        if tag.lower() == code.lower():
            return code
    return PRIMARY_TAGS.get(tag.split("_")[0].lower())


def browser_language() -> str | None:
    """The first language of Accept-Language (by quality) we have a translation for."""
    for value, _quality in request.accept_languages:
        code = normalise_language(value)
        if code:
            return code
    return None


def saved_language() -> str | None:
    """The logged-in user's saved choice, else this browser's cookie (set by the switcher)."""
    from flask_login import current_user

    if getattr(current_user, "is_authenticated", False) and getattr(current_user, "locale", None):
        return normalise_language(current_user.locale)
    return normalise_language(request.cookies.get(LANG_COOKIE))


# Pages under /api/ that people read in a browser: they follow the reader's language like any page.
API_PAGES_FOR_PEOPLE = frozenset({"/api/docs"})


def english_only(path: str) -> bool:
    """The JSON API answers in English, so scripts get stable messages whatever the caller's language."""
    from app.errors import is_api_path

    return is_api_path(path) and path.rstrip("/") not in API_PAGES_FOR_PEOPLE


def select_locale() -> str:
    if not has_request_context() or english_only(request.path):  # jobs and the CLI write English too
        return DEFAULT_LANGUAGE
    return saved_language() or browser_language() or DEFAULT_LANGUAGE


def html_lang() -> str:
    """The BCP 47 tag for <html lang>: 'pt-BR', 'es', 'en'."""
    return str(get_locale() or DEFAULT_LANGUAGE).replace("_", "-")


def format_number(value, digits: int | None = None) -> str:
    """1234.5 -> '1,234.5' / '1.234,5'; `digits` fixes the decimals shown."""
    if value is None:
        return ""
    pattern = None if digits is None else "#,##0" + ("." + "0" * digits if digits else "")
    return numbers.format_decimal(value, format=pattern, locale=get_locale() or DEFAULT_LANGUAGE)


def format_short(value: float) -> str:
    """A setting's value as short as Python's '%g' (1e-04, 0.15), with the locale's decimal sign."""
    return f"{value:g}".replace(".", numbers.get_decimal_symbol(get_locale() or DEFAULT_LANGUAGE))


def format_percent(fraction, digits: int = 0, trim: bool = False) -> str:
    """0.913 -> '91%' / '91 %' (es); digits=1 -> '91.3%' / '91,3%'; trim: at most `digits` ('60%', '62.5%')."""
    if fraction is None:
        return ""
    locale = Locale.parse(str(get_locale() or DEFAULT_LANGUAGE))
    pattern = locale.percent_formats[None].pattern  # the locale's own, e.g. '#,##0 %' in Spanish
    if digits:
        pattern = re.sub(r"0(?!.*0)", "0." + ("#" if trim else "0") * digits, pattern, count=1)
    return numbers.format_percent(fraction, format=pattern, locale=locale)


def format_when(value: datetime | str | None, style: str = "short") -> str:
    """A stored UTC datetime (or its ISO text) in the locale's own style ('short' or 'medium'), in UTC."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return format_datetime(value, style)


def init_i18n(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks: whitespace folded, as extracted
    app.jinja_env.filters.update(number=format_number, percent=format_percent, when=format_when,
                                  status_word=status_word, role_word=role_word, tr=translate_stored,
                                  stored_text=stored_text, code_spans=code_spans)

    @app.context_processor
    def language_context():
        from app.js_strings import js_catalog
        from app.network_words import network_text

        return {"html_lang": html_lang, "languages": LANGUAGES, "short_language_names": SHORT_NAMES,
                "current_language": lambda: str(get_locale() or DEFAULT_LANGUAGE), "js_catalog": js_catalog, "mode_word": mode_word,
                "network_text": network_text}

    @app.before_request
    def choose_language_afresh():
        # Flask-Babel caches the locale on flask.g, which outlives a request when an app context was
        # already pushed (tests, CLI, jobs that serve requests): each request chooses again.
        refresh()

    @app.after_request
    def vary_on_language(response):
        if response.mimetype == "text/html":  # the same address answers in another language elsewhere
            response.vary.add("Accept-Language")
            response.vary.add("Cookie")
        return response


def compile_catalogs(folder: str | None = None) -> list[str]:
    """Compile every app/translations/<lang>/LC_MESSAGES/messages.po whose .mo is missing or older (what
    `make translations` does with pybabel; the test suite calls this so plain pytest works too)."""
    import glob
    import os

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    folder = folder or os.path.join(os.path.dirname(__file__), "translations")
    compiled = []
    for po_path in sorted(glob.glob(os.path.join(folder, "*", "LC_MESSAGES", "messages.po"))):
        mo_path = po_path[:-3] + ".mo"
        if os.path.exists(mo_path) and os.path.getmtime(mo_path) >= os.path.getmtime(po_path):
            continue
        with open(po_path, "rb") as po:
            catalog = read_po(po)
        partial = f"{mo_path}.{os.getpid()}.tmp"
        with open(partial, "wb") as mo:
            write_mo(mo, catalog)
        os.replace(partial, mo_path)  # atomic: a server reading the catalog never sees half a file
        compiled.append(mo_path)
    return compiled


def translate_stored(text: str | None) -> str:
    """Text a background job stored in English (it has no request): translated when it is a marked
    message (N_), else shown as it is."""
    return gettext(text) if text else ""


def stored_line(template: str, **values) -> dict:
    """A line a job writes for a page to show later (a run's log): its English text, which the API
    and old readers show as it is, plus the template (marked N_ where it is written) and the values
    with which stored_text shows it in the reader's language (value names: app.ml.words)."""
    from app.ml.words import line

    return line(template, **values)


def PN_(singular: str, plural: str) -> tuple[str, str]:
    """Marks a plural pair for extraction (the Makefile's keyword PN_:1,2)."""
    return singular, plural


def stored_plural(pair: tuple[str, str], count: str, **values) -> dict:
    """A stored_line whose words follow a number: `pair` from PN_, `count` the name of that number."""
    singular, plural = pair
    entry = stored_line(singular if values[count] == 1 else plural, **values)
    return {**entry, "key": singular, "plural": plural, "count": count}


def stored_join(*lines: dict) -> dict:
    """Several stored lines shown as one text, a space between them."""
    return {"message": " ".join(line["message"] for line in lines), "parts": list(lines)}


def stored_text(entry: dict | str | None) -> str:
    """A stored_line (or a plain {"message": ...}, or text: translate_stored) in the page's language; the
    English text when the template is not in the catalog or its values do not fit it."""
    if not entry:
        return ""
    if isinstance(entry, str):
        return translate_stored(entry)
    if entry.get("parts"):
        return " ".join(stored_text(part) for part in entry["parts"])
    key = entry.get("key")
    if not key:
        return translate_stored(entry.get("message"))
    values = {name: _local_value(name, value) for name, value in (entry.get("values") or {}).items()}
    try:
        if entry.get("plural"):
            from flask_babel import get_translations

            n = int(entry["values"][entry["count"]])
            return get_translations().ungettext(key, entry["plural"], n) % values
        return gettext(key) % values
    except (KeyError, TypeError, ValueError):
        return entry.get("message") or ""


def _local_value(name: str, value):
    if isinstance(value, dict):
        return stored_text(value)
    if name.endswith("_pct1"):
        return format_percent(float(value), 1)
    if name.endswith("_pct"):
        return format_percent(float(value))
    if name.endswith("_s"):
        return format_number(float(value), 1)
    if name.endswith("_word"):
        return translate_stored(str(value))
    if name.endswith("_bytes"):
        return _local_size(int(value))
    if name.endswith("_sci"):
        return _local_decimal(f"{float(value):.2e}")
    if isinstance(value, float):
        return _local_decimal(str(value))
    return format_number(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _local_decimal(text: str) -> str:
    return text.replace(".", numbers.get_decimal_symbol(get_locale() or DEFAULT_LANGUAGE))


def _local_size(size: int) -> str:
    from app.ml.words import size_parts

    number, unit = size_parts(size)
    return f"{format_number(number, 1 if unit != 'B' else 0)} {unit}"


def N_(message: str) -> str:
    """Marks text for extraction where it is translated later, with gettext(variable)."""
    return message


# The words for a run's or an import's status (the value itself stays English in the database and the API).
STATUS_WORDS = {"queued": N_("queued"), "running": N_("running"), "succeeded": N_("succeeded"),
                "failed": N_("failed"), "cancelled": N_("cancelled"), "finished": N_("finished"),
                "deleting": N_("deleting"), "done": N_("done"), "idle": N_("idle")}


def status_word(status: str | None) -> str:
    """A status in the page's language ('queued' -> 'na fila')."""
    return gettext(STATUS_WORDS[status]) if status in STATUS_WORDS else (status or "")


ROLE_WORDS = {"owner": N_("owner"), "editor": N_("editor"), "viewer": N_("viewer")}


def role_word(role: str | None) -> str:
    """A role on a dataset in the page's language."""
    return gettext(ROLE_WORDS[role]) if role in ROLE_WORDS else (role or "")


def ngettext(singular: str, plural: str, n: int, **values) -> str:
    """flask_babel's ngettext, with %(num)s written the locale's way (12,000 / 12.000)."""
    from flask_babel import get_translations

    text = get_translations().ungettext(singular, plural, n)
    return text % {"num": format_number(n), **values}


MODE_WORDS = {"quick": N_("quick"), "feature_extraction": N_("feature extraction"), "fine_tune": N_("fine tune"),
              "scratch": N_("scratch")}


def mode_word(mode: str | None) -> str:
    """A training mode as the pages name it."""
    return gettext(MODE_WORDS[mode]) if mode in MODE_WORDS else (mode or "").replace("_", " ")
