"""Display names for what runs store as identifiers (efficientnet_lite0 -> EfficientNet-Lite0, quick ->
Quick, adamw -> AdamW), for every page that shows a run. Registered as Jinja filters."""
from __future__ import annotations

from flask_babel import gettext as _
from app.blueprints.training import bp
from app.i18n import N_
from app.network_words import network_text
from app.blueprints.training.forms import MODE_HELP, TrainForm

OPTIMIZERS = {"adamw": N_("AdamW"), "sgd": N_("SGD with momentum")}
SCHEDULES = dict(TrainForm.schedule.kwargs["choices"])
# Quick mode's heads as a setting's value, and inside a sentence (the words of app.ml.quick, which
# imports torch: the pages must not).
HEADS = {"linear": N_("Linear"), "mlp": N_("MLP")}
HEADS_IN_TEXT = {"linear": N_("linear"), "mlp": N_("MLP")}


def network_name(name: str | None) -> str:
    """The network's label from the catalogue; an unknown identifier is shown as it is."""
    from app.ml.networks import CATALOGUE  # torch-free

    entry = CATALOGUE.get(name or "")
    return network_text(entry.label) if entry is not None else str(name or "")


def mode_name(mode: str | None) -> str:
    return _(MODE_HELP[mode][0]) if mode in MODE_HELP else str(mode or "")


def head_name(kind: str | None, in_text: bool = False) -> str:
    """'mlp' -> 'MLP', 'linear' -> 'Linear' ('linear' inside a sentence); an unknown kind as it is."""
    words = HEADS_IN_TEXT if in_text else HEADS
    return _(words[kind]) if kind in words else str(kind or "")


WORDS = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES}


def option_value_name(key: str, value):
    """An option's value as the train form words it (identifiers only; numbers pass through)."""
    if key == "architecture":
        return network_name(value)
    if key == "mode":
        return mode_name(value)
    words = WORDS.get(key, {})
    return _(words[value]) if isinstance(value, str) and value in words else value


# Registered once, when the blueprint's modules are first imported (before it is registered).
bp.add_app_template_filter(network_name, "network_name")
bp.add_app_template_filter(mode_name, "mode_name")
