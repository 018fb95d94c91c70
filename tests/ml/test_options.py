import pytest

from app.ml import InvalidOptions, TrainOptions, mode_defaults


def test_defaults_are_usable_and_round_trip():
    o = TrainOptions()
    assert o.mode == "quick" and o.architecture == "efficientnet_lite0"
    assert o.resolved_epochs == mode_defaults("quick")["epochs"]
    assert o.resolved_image_size == 224
    assert TrainOptions.from_dict(o.to_dict()) == o


def test_from_dict_coerces_form_strings():
    o = TrainOptions.from_dict({"mode": "fine_tune", "epochs": "5", "lr": "0.01", "class_balanced": "true",
                                "early_stopping_patience": None})
    assert (o.epochs, o.lr, o.class_balanced, o.early_stopping_patience) == (5, 0.01, True, None)
    assert o.resolved_batch_size == mode_defaults("fine_tune")["batch_size"]


@pytest.mark.parametrize("bad, words", [
    ({"epochs": 0}, "Epochs"),
    ({"epochs": "many"}, "invalid value"),
    ({"lr": -1}, "Learning rate"),
    ({"optimizer": "adam9"}, "optimizer"),
    ({"mode": "turbo"}, "mode"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, "shares together"),
    ({"colour": "blue"}, "Unknown option"),
    ({"architecture": "nope"}, "Unknown architecture"),
    ({"mode": "scratch"}, "scratch"),
    ({"mode": "fine_tune", "architecture": "small_cnn"}, "no pretrained weights"),
    ({"mode": "fine_tune", "head": "mlp"}, "MLP"),
    ({"image_size": 16, "mode": "scratch", "architecture": "small_cnn"}, "Image size"),
])
def test_invalid_options_raise_plain_messages(bad, words):
    with pytest.raises(InvalidOptions) as exc:
        TrainOptions.from_dict(bad)
    assert words.lower() in str(exc.value).lower()


@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999999999999, 1e20, True])
def test_a_seed_outside_what_every_library_takes_is_refused_on_its_field(seed):
    with pytest.raises(InvalidOptions) as exc:
        TrainOptions(seed=seed) if seed is True else TrainOptions.from_dict({"seed": seed})
    assert list(exc.value.fields) == ["seed"]
    assert exc.value.fields["seed"] == "Random seed must be a whole number from 0 to 4,294,967,295."
    assert exc.value.lines["seed"]["key"] == "Random seed must be a whole number from 0 to %(highest)s."


def test_a_seed_with_a_fraction_is_refused_on_its_field():
    with pytest.raises(InvalidOptions) as exc:
        TrainOptions.from_dict({"seed": 1.5})
    assert list(exc.value.fields) == ["seed"]


@pytest.mark.parametrize("seed", [0, 7, 2**32 - 1, "42"])
def test_every_seed_in_range_is_accepted(seed):
    assert TrainOptions.from_dict({"seed": seed}).seed == int(seed)


@pytest.mark.parametrize("bad, fault, message", [
    ({"val_fraction": -0.1}, ["val_fraction"], "Validation share must be between 0 and 0.8."),
    ({"val_fraction": 1.5}, ["val_fraction"], "Validation share must be between 0 and 0.8."),
    ({"test_fraction": 0.9, "val_fraction": 0}, ["test_fraction"], "Test share must be between 0 and 0.8."),
    ({"val_fraction": 0.7}, ["val_fraction"], "Validation and test shares together must be at most 0.8."),
    ({"test_fraction": 0.7}, ["test_fraction"], "Validation and test shares together must be at most 0.8."),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, ["val_fraction", "test_fraction"],
     "Validation and test shares together must be at most 0.8."),
])
def test_a_share_is_blamed_alone_unless_both_together_are_too_much(bad, fault, message):
    with pytest.raises(InvalidOptions) as exc:
        TrainOptions.from_dict(bad)
    assert exc.value.fields == {name: message for name in fault} and str(exc.value) == message
