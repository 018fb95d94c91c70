"""Display names for what runs store as identifiers (efficientnet_lite0 -> EfficientNet-Lite0, quick ->
Quick, adamw -> AdamW), for every page that shows a run. Registered as Jinja filters."""
from __future__ import annotations

from app.blueprints.training import bp
from app.blueprints.training.forms import MODE_HELP, TrainForm

OPTIMIZERS = {"adamw": "AdamW", "sgd": "SGD with momentum"}
SCHEDULES = dict(TrainForm.schedule.kwargs["choices"])


def network_name(name: str | None) -> str:
    """The network's label from the catalogue; an unknown identifier is shown as it is."""
    from app.ml.networks import CATALOGUE  # torch-free

    entry = CATALOGUE.get(name or "")
    return entry.label if entry is not None else str(name or "")


def mode_name(mode: str | None) -> str:
    return MODE_HELP[mode][0] if mode in MODE_HELP else str(mode or "")


WORDS = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES}


def option_value_name(key: str, value):
    """An option's value as the train form words it (identifiers only; numbers pass through)."""
    if key == "architecture":
        return network_name(value)
    if key == "mode":
        return mode_name(value)
    words = WORDS.get(key, {})
    return words.get(value, value) if isinstance(value, str) else value


# Registered once, when the blueprint's modules are first imported (before it is registered).
bp.add_app_template_filter(network_name, "network_name")
bp.add_app_template_filter(mode_name, "mode_name")
