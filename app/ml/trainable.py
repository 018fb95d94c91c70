"""Whether a dataset can be trained on: the one rule behind the dataset pages, the Train page, the API and
the training job. Torch-free, so the web process can ask it without loading torch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

DEFAULT_VAL_FRACTION = 0.15   # TrainOptions' defaults (options.py reads them from here)
DEFAULT_TEST_FRACTION = 0.15


def min_images_per_class(val_fraction: float = DEFAULT_VAL_FRACTION,
                         test_fraction: float = DEFAULT_TEST_FRACTION) -> int:
    """Each class needs an image for training, and one for validation and one for testing when those
    shares are above 0 (stratified_split gives every used split at least one image per class)."""
    return 1 + (val_fraction > 0) + (test_fraction > 0)


@dataclass(frozen=True)
class Gap:
    """One thing that stops training. kind: 'classes' (fewer than two classes; `found` of them),
    'labeled' (fewer than two classes have images; `found` do) or 'few' (the classes in `few`, as
    (name, count), have images but fewer than `needed`)."""

    kind: str
    found: int = 0
    needed: int = 0
    few: tuple[tuple[str, int], ...] = ()


def training_gaps(label_counts: Mapping[str, int], val_fraction: float = DEFAULT_VAL_FRACTION,
                  test_fraction: float = DEFAULT_TEST_FRACTION) -> list[Gap]:
    """Everything that stops training, in the order to fix it; empty when it can start.

    label_counts maps every class name (those without images too) -> number of labeled images.
    """
    gaps = []
    with_images = [name for name, count in label_counts.items() if count > 0]
    if len(label_counts) < 2:
        gaps.append(Gap("classes", found=len(label_counts), needed=2))
    elif len(with_images) < 2:
        gaps.append(Gap("labeled", found=len(with_images), needed=2))
    needed = min_images_per_class(val_fraction, test_fraction)
    few = tuple((name, count) for name, count in label_counts.items() if 0 < count < needed)
    if few:
        gaps.append(Gap("few", needed=needed, few=few))
    return gaps


def _uses(val_fraction: float, test_fraction: float) -> str:
    parts = ["training"] + (["validation"] if val_fraction > 0 else []) + (["testing"] if test_fraction > 0 else [])
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def check_trainable(label_counts: Mapping[str, int], val_fraction: float = DEFAULT_VAL_FRACTION,
                    test_fraction: float = DEFAULT_TEST_FRACTION) -> list[str]:
    """training_gaps in plain English (what the API and the job say); empty list means fine."""
    problems = []
    for gap in training_gaps(label_counts, val_fraction, test_fraction):
        if gap.kind == "classes":
            problems.append("A model learns to tell classes apart, so it needs at least two classes; "
                            f"this dataset has {gap.found}.")
        elif gap.kind == "labeled":
            problems.append("At least two classes need labeled images; "
                            f"{'only one has' if gap.found else 'none have'} any.")
        else:
            problems += [f"Class '{name}' has only {count} image{'s' if count != 1 else ''}; at least "
                         f"{gap.needed} are needed so that {_uses(val_fraction, test_fraction)} each get one."
                         for name, count in gap.few]
    return problems
