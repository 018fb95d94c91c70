"""The catalogs are complete and current: every extracted message is in messages.pot and translated
(not fuzzy) in each language; no template shows English outside gettext; every script key exists."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from tests.i18n.template_text import template_files, untranslated

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "app" / "translations"
LANGUAGES = ("pt_BR", "es")
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "PN_": (1, 2)}  # as the Makefile's BABEL_KEYWORDS
PLACEHOLDER = re.compile(r"%\(\w+\)s|%%|\{\w+\}")


def _read(path: Path):
    with open(path, "rb") as fh:
        return read_po(fh)


@pytest.fixture(scope="module")
def extracted() -> set:
    with open(TRANSLATIONS / "babel.cfg") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        found.add(tuple(message) if isinstance(message, (tuple, list)) else message)
    return found


def _ids(catalog) -> set:
    return {m.id for m in catalog if m.id}


def test_messages_pot_is_up_to_date_with_the_code(extracted):
    pot = _ids(_read(TRANSLATIONS / "messages.pot"))
    assert extracted - pot == set(), "new text: run `make messages` and translate it"
    assert pot - extracted == set(), "text no longer used: run `make messages`"


def test_the_english_text_spells_labeled_one_way(extracted):
    """US spelling, as most of the app: 'labeled' / 'unlabeled', never 'labelled' / 'Unlabelled'."""
    texts = [" ".join(m) if isinstance(m, tuple) else m for m in extracted]
    assert [t for t in texts if re.search(r"labell(ed|ing)", t, re.I)] == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated_and_none_is_fuzzy(lang):
    pot = _ids(_read(TRANSLATIONS / "messages.pot"))
    catalog = _read(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po")
    assert pot - _ids(catalog) == set(), f"{lang}: run `make messages`"
    missing = [m.id for m in catalog if m.id and not all(m.string if isinstance(m.string, tuple) else [m.string])]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert missing == [] and fuzzy == []
    assert catalog.num_plurals == 2


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_every_placeholder(lang):
    """A translation that loses %(name)s or {n} would crash or hide the user's text."""
    wrong = []
    for message in _read(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"):
        if not message.id:
            continue
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        targets = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(sources[-1])) - {"%(num)s"}
        wrong += [t for t in targets if not wanted <= set(PLACEHOLDER.findall(t))]
    assert wrong == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_accuracy_and_precision_are_two_words(lang):
    """The results page shows both metrics side by side: a reader must tell them apart (Portuguese and
    Spanish readers once saw "Precisão"/"Precisión" for both)."""
    catalog = _read(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po")
    precision = catalog.get("Precision").string.lower()
    accuracy_texts = [m.string.lower() for m in catalog
                      if isinstance(m.id, str) and "accuracy" in m.id.lower() and "precision" not in m.id.lower()]
    assert accuracy_texts and [t for t in accuracy_texts if precision in t] == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogs_pass_the_checks_pybabel_compile_makes(lang):
    """What `make translations` would refuse: python-format placeholders that differ in kind or number."""
    catalog = _read(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po")
    assert [(message.id, [str(e) for e in errors]) for message, errors in catalog.check()] == []


def test_the_compile_check_catches_a_stray_percent_sign():
    from babel.messages.catalog import Catalog

    catalog = Catalog(locale="es")
    catalog.add("for the first 30% of the steps", "durante el primer 30% de los pasos", flags=["python-format"])
    assert list(catalog.check())


def test_no_template_shows_english_outside_gettext():
    problems = {str(p.relative_to(ROOT)): untranslated(p.read_text()) for p in template_files()}
    assert {path: found for path, found in problems.items() if found} == {}


def test_the_extraction_check_catches_bare_english():
    assert untranslated('<p>Hello there</p>') == ["Hello there"]
    assert untranslated('<input placeholder="Your name">') == ["Your name"]
    assert untranslated("{{ 'Label' if x else 'Images of' }}") == ["Label", "Images of"]
    assert untranslated('<p>{{ _("Hello there") }} {{ name }}</p>{% trans %}Fine{% endtrans %}') == []


def test_no_gettext_call_hides_inside_an_f_string():
    """pybabel does not read inside f-strings: text marked there would never reach the catalogs."""
    import ast

    hidden = []
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                hidden += [f"{path.relative_to(ROOT)}:{call.lineno}" for call in ast.walk(node)
                           if isinstance(call, ast.Call) and getattr(call.func, "id", "") in KEYWORDS
                           and call.args and isinstance(call.args[0], ast.Constant)]
    assert hidden == []


def test_every_script_string_is_in_the_js_catalog():
    from app.js_strings import PLURAL, SIMPLE

    used = set()
    for script in (ROOT / "app" / "static").rglob("*.js"):
        if not script.name.startswith("htmx"):
            used |= set(re.findall(r"\bt\(\"([a-z_]+)\"", script.read_text()))
    used = {key for key in used if not key.endswith("_")}  # t("code_" + code): a prefix, checked below
    assert used and used - set(SIMPLE) - set(PLURAL) == set()


def test_script_strings_with_a_count_have_plural_forms_and_get_the_bare_count():
    """'1 files could not be used' / '1 não puderam ser usados': a count takes the plural rules."""
    from app.js_strings import PLURAL, SIMPLE, js_catalog

    counted = {key for key, text in SIMPLE.items() if re.search(r"\{(n|total|count)\}", str(text))}
    assert counted == {"sending_files"}  # always two or more files: a single one is 'Sending {name}…'
    assert {"added", "unusable", "stopped", "threshold_none"} <= set(PLURAL)
    assert js_catalog()["unusable"] == ["{n} file could not be used", "{n} files could not be used"]
    calls = []
    for script in (ROOT / "app" / "static").rglob("*.js"):
        if not script.name.startswith("htmx"):
            calls += re.findall(r"\bt\(\"([a-z_]+)\",\s*\{([^}]*)\}", script.read_text())
    plural_calls = [(key, args) for key, args in calls if key in PLURAL]
    assert {"added", "unusable", "stopped"} <= {key for key, _ in plural_calls}
    # studio.t picks the form from the number itself and formats it; a preformatted '1.000' would not do.
    assert [(k, a) for k, a in plural_calls if not re.search(r"\bn:\s*[\w.]+\s*(,|$)", a.strip())] == []


def test_every_word_of_the_network_catalogue_is_marked_for_translation():
    from app.ml.networks import CATALOGUE, NOT_INSTALLED
    from app.network_words import WORDS

    texts = {NOT_INSTALLED} | {e.description for e in CATALOGUE.values()}
    texts |= {e.label for e in CATALOGUE.values() if " " in e.label}  # 'Small CNN (from scratch)', not 'ResNet-18'
    assert texts - set(WORDS) == set()


def test_the_codes_the_try_page_words_are_real_api_codes():
    from app.errors import ERROR_CODES, FILE_ERROR_CODES
    from app.js_strings import SIMPLE

    worded = {key[len("code_"):] for key in SIMPLE if key.startswith("code_")}
    assert worded and worded <= set(ERROR_CODES) | set(FILE_ERROR_CODES)
