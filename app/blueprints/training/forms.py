"""The "Train a model" form: name, network, mode, and every engine option under Advanced."""
from __future__ import annotations

from typing import Collection

from flask_wtf import FlaskForm
from flask_babel import gettext as _, lazy_gettext as _l
from wtforms import BooleanField, FloatField, IntegerField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from app.i18n import N_, format_number, format_percent, stored_text
from app.models import utcnow
from app.ml.trainable import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION

MODE_HELP = {
    "quick": (N_("Quick"), _l("Fastest. Reuses what a pretrained network already sees in pictures and only "
                       "learns your classes — seconds to a few minutes.")),
    "feature_extraction": (N_("Feature extraction"), _l("Like Quick, but shows varied copies of each picture "
                                                 "(crops, flips) while learning. Slower, sometimes more accurate.")),
    "fine_tune": (N_("Fine-tune"), _l("Adjusts the whole pretrained network to your pictures. Slowest; best when "
                               "your images look unlike everyday photos.")),
    "scratch": (N_("From scratch"), _l("Learns from nothing with a small network. Only for small, simple images "
                                "(icons, digits); pick a from-scratch network above.")),
}

# Advanced option -> plain explanation shown under the field.
OPTION_HELP = {
    "epochs": _l("How many times training goes through all images. Empty: 60 for Quick, 10 for Feature "
              "extraction, 8 for Fine-tune, 30 for From scratch."),
    "batch_size": _l("Images looked at together in one step. Empty: 64 (Quick, From scratch) or 32."),
    "image_size": _l("Pictures are resized to this many pixels square. Empty: the network's own size."),
    "optimizer": _l("The method that adjusts the network. AdamW is a safe default."),
    "lr": _l("Learning rate: how big each adjustment is. Empty: a per-mode default."),
    "backbone_lr_factor": _l("Fine-tune only: the pretrained part learns this much slower than the new part."),
    "freeze_bn": _l("Fine-tune only: keep the pretrained BatchNorm statistics (the running means and variances) "
                 "instead of re-estimating them from your images; their scale and shift still learn. Safer with "
                 "small batches and datasets; turn off for many images unlike everyday photos."),
    "weight_decay": _l("Gently keeps the network's numbers small, which helps it generalise."),
    "momentum": _l("SGD only: how much each step keeps going in the previous direction. Used as set with every "
                "schedule (one-cycle does not cycle it)."),
    "nesterov": _l("SGD only: Nesterov's momentum, which looks one step ahead (needs a momentum above 0)."),
    "schedule": _l("How the learning rate changes over time, stepped after every batch. One-cycle warms it up "
                "for the first 30 percent of the steps, then lowers it; the momentum stays as set."),
    "step_size": _l("Step schedule: epochs between learning-rate drops."),
    "gamma": _l("Step schedule: the learning rate is multiplied by this at each drop."),
    "label_smoothing": _l("Makes the model a little less over-confident (0 = off)."),
    "class_balanced": _l("Give rare classes as much weight as common ones."),
    "early_stopping_patience": _l("Stop when the validation score has not improved for this many epochs; the best "
                               "epoch is kept and the log says where it stopped. Empty: never."),
    "best_metric": _l("Which validation score picks the best epoch (and Quick mode's head). Balanced accuracy and "
                   "macro-F1 count every class equally: better when some classes have far fewer images."),
    "val_fraction": _l("Share of each class kept aside to pick the best epoch (validation)."),
    "test_fraction": _l("Share of each class kept aside to measure the final model (test)."),
    "seed": _l("Same seed + same data = the same split and the same result."),
    "random_resized_crop": _l("Train on random crops of each picture (variety). Off: every training view is the "
                           "centred crop testing uses (mirrored only when Mirror images is on). Not used by Quick."),
    "hflip": _l("Train on mirrored pictures too. Turn off when left/right matters (e.g. text). Not used by Quick."),
    "head": _l("Quick mode: the small part trained on top. Automatic fits both and keeps the one that does "
            "better on the validation images; Linear is simplest, MLP can fit harder cases."),
    "dropout": _l("Randomly ignores some signals while training to avoid memorising."),
}

ADVANCED_FIELDS = tuple(OPTION_HELP)


def name_parts(dataset_name: str, number: int = 1) -> tuple[str, str]:
    """The default name around its mode: ("<dataset> · ", " · <date>"), and " (n)" after the date for the
    n-th name alike on the dataset."""
    return f"{dataset_name} · ", f" · {utcnow():%Y-%m-%d}" + (f" ({number})" if number > 1 else "")


def numbered(name: str, number: int) -> str:
    """`name`, or "name (n)" from the second on, within the 120 characters a name may have."""
    mark = f" ({number})" if number > 1 else ""
    return name[:120 - len(mark)] + mark


def free_number(name: str, taken: Collection[str]) -> int:
    """The first number that makes `name` one that is not taken (1: the name as it is)."""
    number = 1
    while numbered(name, number) in taken:
        number += 1
    return number


def default_name(dataset_name: str, mode: str | None, taken: Collection[str] = ()) -> str:
    """What a model is called unless its trainer names it: dataset · mode · date, numbered " (2)", " (3)"…
    when `taken` (the names of the dataset's runs) already has it."""
    prefix, suffix = name_parts(dataset_name)
    name = f"{prefix}{_(MODE_HELP.get(mode or 'quick', MODE_HELP['quick'])[0])}{suffix}"
    return numbered(name, free_number(name, taken))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{format_number(seconds / 3600, 1)} h"


def hint_text(h, images: int) -> str:
    """One line of figures beside a network: accuracy (measured here or published) and speed."""
    parts = []
    if h.accuracy is not None:
        parts.append(_("%(percent)s right on the ants-vs-bees photos (measured, Quick)",
                       percent=format_percent(h.accuracy)))
    if h.imagenet_top1 is not None:
        parts.append(_("ImageNet top-1 %(percent)s (published)", percent=format_percent(h.imagenet_top1 / 100, 1)))
    if h.images_per_s:
        speed = _("~%(speed)s images/s on a 2-core CPU", speed=format_number(h.images_per_s, 0))
        if h.seconds:
            speed += ", " + _("~%(duration)s to look at your %(count)s images once", duration=_duration(h.seconds),
                              count=format_number(images))
        parts.append(speed)
    return " · ".join(parts)


def preselected_network(infos, images: int) -> str | None:
    """The network the form preselects: the first usable one in the order that suits `images` labelled
    images (app.ml.networks.order_for_dataset); None when none is usable."""
    from app.ml.networks import order_for_dataset

    return next((i.name for i in order_for_dataset(list(infos), images) if i.available), None)


class TrainForm(FlaskForm):
    name = StringField(_l("Model name"), validators=[Optional(), Length(max=120)])  # blank: default_name()
    architecture = RadioField(_l("Network"), validators=[DataRequired(_l("Choose a network."))])
    mode = RadioField(_l("How to train"), default="quick",
                      choices={key: label for key, (label, _) in MODE_HELP.items()},
                      validators=[DataRequired(_l("Choose how to train."))])
    epochs = IntegerField(_l("Epochs"), validators=[Optional()])
    batch_size = IntegerField(_l("Batch size"), validators=[Optional()])
    image_size = IntegerField(_l("Image size (pixels)"), validators=[Optional()])
    optimizer = SelectField(_l("Optimizer"), choices={"adamw": N_("AdamW"), "sgd": N_("SGD with momentum")}, default="adamw")
    lr = FloatField(_l("Learning rate"), validators=[Optional()])
    backbone_lr_factor = FloatField(_l("Backbone learning-rate factor"), default=0.1)
    freeze_bn = BooleanField(_l("Freeze BatchNorm statistics (fine-tune)"), default=True)
    weight_decay = FloatField(_l("Weight decay"), default=1e-4)
    momentum = FloatField(_l("Momentum"), default=0.9)
    nesterov = BooleanField(_l("Nesterov momentum (SGD)"), default=True)
    schedule = SelectField(_l("Learning-rate schedule"), default="cosine", choices={
        "cosine": N_("Cosine (smooth decrease)"), "step": N_("Step (drops every few epochs)"),
        "onecycle": N_("One-cycle (warm up, then decrease)"), "none": N_("Constant")})
    step_size = IntegerField(_l("Step size (epochs)"), default=5)
    gamma = FloatField(_l("Step factor (gamma)"), default=0.1)
    label_smoothing = FloatField(_l("Label smoothing"), default=0.1)
    class_balanced = BooleanField(_l("Balance classes"), default=False)
    early_stopping_patience = IntegerField(_l("Early-stopping patience (epochs)"), default=10, validators=[Optional()])
    best_metric = SelectField(_l("Best epoch by"), default="accuracy", choices={
        "accuracy": N_("Validation accuracy"), "balanced_accuracy": N_("Validation balanced accuracy"),
        "macro_f1": N_("Validation macro-F1")})
    val_fraction = FloatField(_l("Validation share"), default=DEFAULT_VAL_FRACTION)
    test_fraction = FloatField(_l("Test share"), default=DEFAULT_TEST_FRACTION)
    seed = IntegerField(_l("Random seed"), default=0)
    random_resized_crop = BooleanField(_l("Random crops"), default=True)
    hflip = BooleanField(_l("Mirror images"), default=True)
    head = SelectField(_l("Head"), default="auto", choices={
        "auto": N_("Automatic (best on validation)"), "linear": N_("Linear"), "mlp": N_("Small MLP")})
    dropout = FloatField(_l("Dropout"), default=0.2)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for choice in (self.mode, self.optimizer, self.schedule, self.best_metric, self.head):
            choice.choices = {key: _(label) for key, label in choice.choices.items()}

    def set_architectures(self, infos, images: int = 0) -> None:
        """Usable networks first, ordered by what suits `images` labelled images (see
        app.ml.networks.order_for_dataset); networks not installed stay listed (greyed in the template)."""
        from app.ml.networks import hint, order_for_dataset

        ordered = order_for_dataset(list(infos), images)
        self.architecture.choices = {i.name: i.label for i in ordered}
        self.arch_infos = {i.name: i for i in ordered}
        self.arch_hints = {i.name: hint_text(hint(i, images), images) for i in ordered if i.pretrained}
        if not self.architecture.data:
            self.architecture.data = preselected_network(ordered, images)

    def fill_name(self, dataset_name: str, taken: Collection[str] = ()) -> None:
        """Prefill the name (a new form) or name a model left unnamed: dataset · mode · date, numbered when
        `taken` (the dataset's run names) has it. `default_parts` go round the mode, for the page's script."""
        base = default_name(dataset_name, self.mode.data)
        number = free_number(base, taken)
        self.default_parts = name_parts(dataset_name, number)
        if not (self.name.data or "").strip():
            self.name.data = numbered(base, number)

    def validate_all(self) -> bool:
        """The fields' own checks and every option rule at once (ranges, combinations), each message on
        the field at fault; True when the form can start a run."""
        from app.ml.errors import InvalidOptions
        from app.ml.options import TrainOptions

        valid = self.validate() & self._network_usable()
        values = {name: getattr(self, name).data for name in ADVANCED_FIELDS if not getattr(self, name).errors}
        try:
            TrainOptions.from_dict({**values, "architecture": self.architecture.data, "mode": self.mode.data})
        except InvalidOptions as exc:
            for name, message in (exc.fields or {"mode": exc.message}).items():
                message = stored_text(exc.lines[name]) if name in exc.lines else message  # the reader's language
                field = self[name] if name in self else self.mode
                if message not in field.errors:
                    field.errors = [*field.errors, message]
            return False
        return valid

    def _network_usable(self) -> bool:
        info = getattr(self, "arch_infos", {}).get(self.architecture.data)
        if info is None or info.available:
            return True
        self.architecture.errors = [*self.architecture.errors,
                                    _("This network cannot be used right now: %(network)s is %(reason)s.",
                                      network=info.label, reason=_(info.reason))]
        return False

    def split_warning(self) -> str | None:
        """A warning, not a refusal, for a run that keeps no validation and no test images (experts may
        want every image to learn from): nothing picks its best epoch and nothing measures it."""
        if self.val_fraction.data == 0 and self.test_fraction.data == 0:
            return _("This model keeps no validation and no test images: the last epoch is kept, not the best "
                     "one, and it will have no score. Set a validation or test share above 0 to get them.")
        return None

    def option_values(self) -> dict:
        """The advanced options as a dict for TrainOptions.from_dict (empty optional -> None)."""
        return {name: getattr(self, name).data for name in ADVANCED_FIELDS}
