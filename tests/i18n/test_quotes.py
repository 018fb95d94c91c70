"""A name shown inside a sentence is quoted one way: curly double quotes, “%(name)s”, as most messages
already did. Straight quotes ('%(name)s' or "%(name)s") crept into some flashes and errors."""
from __future__ import annotations

import re

import pytest

from tests.i18n.test_catalogs import LANGUAGES, TRANSLATIONS, _read, extracted  # noqa: F401 (a fixture)

# A placeholder (%(name)s, {name} or a template's {{ name }}) with a straight quote right before or after it.
# An apostrophe (model #%(id)s's checkpoint) is not a quote.
STRAIGHT = re.compile(r"(?<![A-Za-z])['\"](%\(\w+\)s|\{\w+\}|\{\{ ?\w+ ?\}\})"
                      r"|(%\(\w+\)s|\{\w+\}|\{\{ ?\w+ ?\}\})['\"](?![A-Za-z])")


def _texts(message) -> tuple:
    return message if isinstance(message, tuple) else (message,)


def _straight(text: str) -> bool:
    text = re.sub(r"<[^>]*>", "", text)  # href="%(url)s" and other attributes are markup, not quotes
    return bool(STRAIGHT.search(text))


def test_the_check_sees_straight_quotes_but_not_attributes():
    assert _straight("Class '%(name)s' added.") and _straight('Model "{name}" is ready.')
    assert not _straight("Class “%(name)s” added.") and not _straight('<a href="%(url)s">Log in</a>')
    assert not _straight("%(owner)s, to make you an editor (on the dataset's Sharing page).")
    assert not _straight("Queued “%(name)s”: it continues from model #%(id)s's checkpoint.")


def test_names_in_english_text_are_in_curly_quotes(extracted):  # noqa: F811
    assert sorted(t for m in extracted for t in _texts(m) if t and _straight(t)) == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_names_in_translations_are_in_curly_quotes(lang):
    catalog = _read(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po")
    assert sorted(t for m in catalog if m.id for t in _texts(m.string) if t and _straight(t)) == []
