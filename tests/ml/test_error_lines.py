"""The ML library's sentences for people carry app.ml.words lines (template + values), so the web app can
show them in the reader's language while `.message`/str() stay the English text the API and logs use:
errors raised on purpose (MLError.because / .saying) and the progress events' phase messages."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.ml import errors
from app.ml.errors import InvalidOptions, UnknownArchitecture
from app.ml.options import TrainOptions
from app.ml.progress import Hooks, ProgressReporter
from app.ml.words import N_, joined, line

ML = Path(__file__).resolve().parents[2] / "app" / "ml"
ERRORS = {name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, errors.MLError)}
# Raised plainly on purpose: a guard that only a bug can reach (the dataclass refusing its own fields).
PLAIN = {("options.py", "InvalidOptions(str(exc))")}


def test_every_ml_error_raised_on_purpose_carries_a_words_line():
    plain = set()
    for path in sorted(ML.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                    and isinstance(node.exc.func, ast.Name) and node.exc.func.id in ERRORS:
                plain.add((path.name, ast.unparse(node.exc)))
    assert plain == PLAIN


def test_a_words_line_keeps_the_english_message_and_says_it_again_as_template_and_values():
    from app.ml.networks import spec

    with pytest.raises(UnknownArchitecture) as exc:
        spec("vgg99")
    err = exc.value
    assert str(err) == err.message == err.line["message"]
    assert err.message.startswith("Unknown architecture 'vgg99'; choose one of ")
    assert err.line["key"] == "Unknown architecture %(name)s; choose one of %(choices)s."
    assert err.line["values"]["name"] == "'vgg99'"
    with pytest.raises(InvalidOptions) as exc:  # the same line, on the option's field
        TrainOptions.from_dict({"architecture": "vgg99"})
    assert exc.value.line == exc.value.lines["architecture"] == err.line


def test_stored_options_that_break_several_rules_fail_with_all_their_lines():
    with pytest.raises(InvalidOptions) as exc:
        TrainOptions.from_dict({"architecture": "small_cnn", "mode": "scratch", "epochs": 0, "dropout": 2})
    err = exc.value
    assert err.message == "Epochs must be between 1 and 1000. Dropout must be at least 0 and below 1."
    assert [part["key"] for part in err.line["parts"]] == ["Epochs must be between 1 and 1000.",
                                                           "Dropout must be at least 0 and below 1."]
    assert err.line["message"] == err.message and set(err.lines) == {"epochs", "dropout"}
    with pytest.raises(InvalidOptions) as exc:
        TrainOptions.from_dict({"epochs": "many"})
    assert exc.value.message == "Option epochs has an invalid value: 'many'."  # on its field, as a line too
    assert exc.value.lines["epochs"] == exc.value.line and exc.value.line["values"] == {"name": "epochs",
                                                                                         "value": "'many'"}
    with pytest.raises(InvalidOptions) as exc:
        TrainOptions.from_dict({"colour": "blue"})
    assert (exc.value.message, exc.value.line["values"]) == ("Unknown option(s): colour.", {"names": "colour"})


def test_a_joined_error_says_each_part_and_the_whole_in_english():
    said = joined(line(N_("The copy in the bucket is damaged.")),
                  line(N_("%(network)s is not installed."), network="ResNet-18"))
    err = errors.WeightsError.saying(said)
    assert err.message == "The copy in the bucket is damaged. ResNet-18 is not installed." and err.line is said


def test_phases_carry_their_words_line_and_notes_never_an_earlier_one():
    events = []
    progress = ProgressReporter(Hooks(progress=events.append), {"preparing": 0.5, "training": 0.5}, epochs=1)
    progress.phase("preparing", line(N_("Decoding images…")))
    progress.note("a plain note")
    progress.emit(1, 2)
    progress.phase("training")
    start, note, step, training = events
    assert start["message"] == "Decoding images…" and start["line"]["key"] == "Decoding images…"
    assert note["line"] is None and note["message"] == "a plain note"
    assert "line" not in step and step["message"] is None and training["message"] is None
