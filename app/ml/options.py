"""Training options: one frozen dataclass with defaults a non-expert can leave alone."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Mapping

from .networks import DEFAULT_ARCHITECTURE, architecture_info
from .errors import InvalidOptions, UnknownArchitecture
from .trainable import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION
from .words import N_, joined, line

MODES = ("quick", "feature_extraction", "fine_tune", "scratch")
UNKNOWN_MODE = N_("Unknown training mode %(mode)s; choose one of %(modes)s.")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step", "onecycle", "none")
HEADS = ("auto", "linear", "mlp")  # auto: quick mode fits both and keeps the better on validation
# The validation score that picks the best epoch (and quick mode's head); balanced accuracy and macro-F1
# weigh every class equally, which matters when some classes have far fewer images.
BEST_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
MAX_HELD_OUT = 0.8  # validation + test share: at least a fifth of each class is left to learn from
MAX_SEED = 2**32 - 1  # np.random.seed's range (torch takes more): a seed that works in every library

# epochs, lr, batch_size per mode. Quick mode trains only a head on cached features, so an
# "epoch" there costs milliseconds.
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "quick": {"epochs": 60, "lr": 3e-3, "batch_size": 64},
    "feature_extraction": {"epochs": 10, "lr": 1e-3, "batch_size": 32},
    "fine_tune": {"epochs": 8, "lr": 1e-3, "batch_size": 32},
    "scratch": {"epochs": 30, "lr": 3e-3, "batch_size": 64},
}


def mode_defaults(mode: str) -> dict[str, Any]:
    """Default epochs, lr and batch_size for a mode (what TrainOptions uses when they are None)."""
    if mode not in MODE_DEFAULTS:
        raise InvalidOptions.because(UNKNOWN_MODE, mode=repr(mode), modes=", ".join(MODES))
    return dict(MODE_DEFAULTS[mode])


@dataclass(frozen=True)
class TrainOptions:
    """Everything that decides how a model is trained. Use from_dict() for untrusted input."""

    architecture: str = DEFAULT_ARCHITECTURE
    mode: str = "quick"
    epochs: int | None = None          # None: per-mode default
    batch_size: int | None = None      # None: per-mode default
    image_size: int | None = None      # None: architecture default
    optimizer: str = "adamw"
    lr: float | None = None            # None: per-mode default
    backbone_lr_factor: float = 0.1    # fine_tune: backbone lr = lr * factor
    weight_decay: float = 1e-4
    momentum: float = 0.9              # sgd only
    nesterov: bool = True              # sgd only: Nesterov momentum (needs momentum > 0)
    schedule: str = "cosine"
    step_size: int = 5                 # epochs, schedule='step'
    gamma: float = 0.1                 # schedule='step'
    label_smoothing: float = 0.1
    class_balanced: bool = False
    early_stopping_patience: int | None = 10   # epochs without val improvement; None: off
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    seed: int = 0
    random_resized_crop: bool = True
    hflip: bool = True
    head: str = "auto"                 # quick mode: 'auto' (best of both on validation), 'linear', 'mlp'
    dropout: float = 0.2
    freeze_bn: bool = True             # fine_tune: keep the pretrained BatchNorm statistics
    best_metric: str = "accuracy"      # validation score that picks the best epoch (BEST_METRICS)

    def __post_init__(self):
        _validate(self)

    # Resolved values ------------------------------------------------------------------------
    @property
    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else MODE_DEFAULTS[self.mode]["epochs"]

    @property
    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else MODE_DEFAULTS[self.mode]["lr"]

    @property
    def resolved_batch_size(self) -> int:
        return self.batch_size if self.batch_size is not None else MODE_DEFAULTS[self.mode]["batch_size"]

    @property
    def head_candidates(self) -> tuple[str, ...]:
        """The heads to fit: both in quick mode with 'auto' (linear first: it wins ties), else one."""
        if self.mode != "quick":
            return ("linear",)
        return ("linear", "mlp") if self.head == "auto" else (self.head,)

    @property
    def resolved_image_size(self) -> int:
        return self.image_size or architecture_info(self.architecture).default_image_size

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainOptions":
        """Build from a JSON-like mapping; unknown keys or bad values raise InvalidOptions."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InvalidOptions.because(N_("Unknown option(s): %(names)s."), names=", ".join(unknown))
        values = {}
        for key, raw in data.items():
            values[key] = _coerce(key, raw, cls.__dataclass_fields__[key].type)
        try:
            return cls(**values)
        except TypeError as exc:  # pragma: no cover - defensive
            raise InvalidOptions(str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (round-trips through from_dict)."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "TrainOptions":
        return dataclasses.replace(self, **changes)


def applied_options(values: Mapping[str, Any]) -> set[str]:
    """The option names that change anything for these options (a stored run's dict; missing keys
    take their defaults): e.g. momentum only with SGD, random crops only in the image modes, the
    head choice only in quick mode. Pages list only these under "Settings used"."""
    defaults = {f.name: f.default for f in fields(TrainOptions)}
    o = {**defaults, **{k: v for k, v in values.items() if k in defaults}}
    has_val = (o["val_fraction"] or 0) > 0
    when = {
        "backbone_lr_factor": o["mode"] == "fine_tune", "freeze_bn": o["mode"] == "fine_tune",
        "momentum": o["optimizer"] == "sgd", "nesterov": o["optimizer"] == "sgd",
        "step_size": o["schedule"] == "step", "gamma": o["schedule"] == "step",
        "random_resized_crop": o["mode"] != "quick", "hflip": o["mode"] != "quick",
        "head": o["mode"] == "quick", "early_stopping_patience": has_val, "best_metric": has_val,
    }
    return {name for name in defaults if when.get(name, True)}


def _coerce(key: str, raw: Any, type_name: str) -> Any:
    if raw is None:
        if "None" in type_name:
            return None
        raise _field_error(key, N_("Option %(name)s needs a value."), name=key)
    try:
        if type_name.startswith("bool"):
            if isinstance(raw, str):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError
                return raw.lower() in ("true", "1", "yes", "on")
            return bool(raw)
        if type_name.startswith("int"):
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise _field_error(key, N_("Option %(name)s has an invalid value: %(value)s."), name=key,
                           value=repr(raw)) from None


def _field_error(key: str, template: str, **values) -> InvalidOptions:
    """InvalidOptions about one option: on its field (`fields`, `lines`), and as the error's own line."""
    said = line(template, **values)
    err = InvalidOptions(said["message"], fields={key: said["message"]}, lines={key: said})
    err.line = said
    return err


def _validate(o: TrainOptions) -> None:
    problems = option_problems(o)
    if problems:
        whole = problems[0][1] if len(problems) == 1 else joined(*(said for _, said in problems))
        err = InvalidOptions(whole["message"],
                             fields={name: said["message"] for names, said in problems for name in names},
                             lines={name: said for names, said in problems for name in names})
        err.line = whole  # all of them at once: a stored run's options that no longer pass (its failure)
        raise err


def option_problems(o: TrainOptions) -> list[tuple[tuple[str, ...], dict]]:
    """Every rule the options break at once, as ((option names...), an app.ml.words line: its English
    text and what a page needs to say it in the reader's language); [] when they are fine."""
    try:
        info = architecture_info(o.architecture)
    except UnknownArchitecture as exc:
        return [(("architecture",), exc.line or {"message": exc.message})]
    net, sizes = {"network": info.label}, {"low": info.min_image_size, "high": info.max_image_size}
    rules = _choice_rules(o, info.pretrained, net) + [
        (("epochs",), o.epochs is None or 1 <= o.epochs <= 1000, N_("Epochs must be between 1 and 1000."), {}),
        (("batch_size",), o.batch_size is None or 1 <= o.batch_size <= 4096,
         N_("Batch size must be between 1 and 4096."), {}),
        (("lr",), o.lr is None or 0 < o.lr <= 10, N_("Learning rate must be above 0 and at most 10."), {}),
        (("backbone_lr_factor",), 0 <= o.backbone_lr_factor <= 10,
         N_("Backbone learning-rate factor must be between 0 and 10."), {}),
        (("weight_decay",), 0 <= o.weight_decay <= 1, N_("Weight decay must be between 0 and 1."), {}),
        (("momentum",), 0 <= o.momentum < 1, N_("Momentum must be at least 0 and below 1."), {}),
        (("nesterov",), not (o.optimizer == "sgd" and o.nesterov and o.momentum == 0),
         N_("Nesterov momentum needs a momentum above 0: set a momentum or turn Nesterov off."), {}),
        (("step_size",), o.step_size >= 1, N_("Step size must be at least 1 epoch."), {}),
        (("gamma",), 0 < o.gamma <= 1, N_("Gamma must be above 0 and at most 1."), {}),
        (("label_smoothing",), 0 <= o.label_smoothing < 1, N_("Label smoothing must be at least 0 and below 1."), {}),
        (("dropout",), 0 <= o.dropout < 1, N_("Dropout must be at least 0 and below 1."), {}),
        (("early_stopping_patience",), o.early_stopping_patience is None or o.early_stopping_patience >= 1,
         N_("Early-stopping patience must be at least 1 epoch (or empty to turn it off)."), {}),
        (("val_fraction",), 0 <= o.val_fraction <= MAX_HELD_OUT, N_("Validation share must be between 0 and 0.8."), {}),
        (("test_fraction",), 0 <= o.test_fraction <= MAX_HELD_OUT, N_("Test share must be between 0 and 0.8."), {}),
        (_shares_at_fault(o), not _shares_in_range(o) or o.val_fraction + o.test_fraction <= MAX_HELD_OUT,
         N_("Validation and test shares together must be at most 0.8."), {}),
        (("seed",), _is_whole(o.seed) and 0 <= o.seed <= MAX_SEED,
         N_("Random seed must be a whole number from 0 to %(highest)s."), {"highest": MAX_SEED}),
        (("image_size",), o.image_size is None or info.min_image_size <= o.image_size <= info.max_image_size,
         N_("Image size for %(network)s must be between %(low)s and %(high)s pixels."), {**net, **sizes}),
    ]
    return [(names, line(template, **values)) for names, ok, template, values in rules if not ok]


def _choice_rules(o: TrainOptions, pretrained: bool, net: dict) -> list[tuple]:
    """The rules on options chosen from a list (mode, optimizer, schedule, head, best-epoch measure)."""
    return [
        (("mode",), o.mode in MODES, UNKNOWN_MODE,
         {"mode": repr(o.mode), "modes": ", ".join(MODES)}),
        (("mode",), o.mode != "scratch" or not pretrained,
         N_("%(network)s is a pretrained network; 'scratch' mode needs a from-scratch architecture "
            "(small_cnn or small_resnet)."), net),
        (("mode",), o.mode == "scratch" or pretrained,
         N_("%(network)s has no pretrained weights; use 'scratch' mode with it."), net),
        (("optimizer",), o.optimizer in OPTIMIZERS, N_("Unknown optimizer %(value)s; choose adamw or sgd."),
         {"value": repr(o.optimizer)}),
        (("schedule",), o.schedule in SCHEDULES, N_("Unknown schedule %(value)s; choose one of %(choices)s."),
         {"value": repr(o.schedule), "choices": ", ".join(SCHEDULES)}),
        (("head",), o.head in HEADS, N_("Unknown head %(value)s; choose auto, linear or mlp."), {"value": repr(o.head)}),
        (("head",), o.head != "mlp" or o.mode == "quick", N_("An MLP head is only offered in quick mode."), {}),
        (("best_metric",), o.best_metric in BEST_METRICS,
         N_("Unknown best-epoch measure %(value)s; choose one of %(choices)s."),
         {"value": repr(o.best_metric), "choices": ", ".join(BEST_METRICS)}),
    ]


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shares_in_range(o: TrainOptions) -> bool:
    return 0 <= o.val_fraction <= MAX_HELD_OUT and 0 <= o.test_fraction <= MAX_HELD_OUT


def _shares_at_fault(o: TrainOptions) -> tuple[str, ...]:
    """The share left at its default is not the one to fix when the two together are too much."""
    changed = tuple(name for name, default in (("val_fraction", DEFAULT_VAL_FRACTION),
                                               ("test_fraction", DEFAULT_TEST_FRACTION))
                    if getattr(o, name) != default)
    return changed if len(changed) == 1 else ("val_fraction", "test_fraction")
