"""Confidence intervals for accuracies measured on a few images (pure Python: pages use it without
loading numpy or torch)."""
from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval (95% by default) for `correct` successes out of `total`; None for 0.

    Unlike the plain p ± z·sqrt(p(1-p)/n) it stays inside 0..1 and is honest near 0% and 100%:
    30 of 36 gives about 68%–92%."""
    if total <= 0:
        return None
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
