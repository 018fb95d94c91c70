"""Why did the model answer that? Occlusion sensitivity: hide one part of the picture at a time and see
how much the answer's probability falls.

The model's input crop is cut into `tiles` x `tiles` equal tiles. A grey square `patch` tiles wide (the
normalisation mean, i.e. 0 in model input, so it adds no colour of its own) slides over it one tile at a
time: with the default patch of 2 tiles the stride is half the patch, so every tile is hidden in up to
four positions. A tile's importance is the mean fall of the target class's probability over the positions
that hid it; falls are clipped at 0 (hiding it helped the answer: it did not support it) and scaled so the
most important tile is 1.

Cost: (tiles - patch + 1) ** 2 occluded copies plus the image itself, each one forward pass: 50 for the
defaults (8 tiles, patch 2), run in batches of at most MAX_CHUNK. On a CPU that is about as long as
classifying 50 images. The result depends only on the crop and the model: no randomness.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .data import eval_crop_box

MAX_CHUNK = 32      # occluded copies per call to `run`: bounds memory (32 x 3 x 224 x 224 floats = 19 MB)
GREY = 0.0          # the normalisation mean, in model input

Run = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Explanation:
    """grid: [tiles, tiles] importance 0..1 (row 0 at the top of the crop); drops: the same tiles' mean
    probability falls before clipping and scaling; target: the class explained; probability: its
    probability on the whole image; forwards: the forward passes it took."""

    grid: np.ndarray
    drops: np.ndarray
    target: int
    probability: float
    forwards: int


def forwards_needed(tiles: int = 8, patch: int = 2) -> int:
    """Forward passes one explanation takes (see the module doc)."""
    return (tiles - patch + 1) ** 2 + 1


def occlusion(predictor, crop: np.ndarray, target: int | None = None, tiles: int = 8, patch: int = 2,
              run: Run | None = None) -> Explanation:
    """Explain one prepared image: crop is uint8 [3,S,S] as predictor.prepare gives it. target: a class
    index, default the predicted class (the first of equals). run: normalised batch -> probabilities,
    default predictor.probabilities (a server passes its inference queue). Raises ValueError for a
    target outside the model's classes or a grid that does not fit the crop."""
    size = int(crop.shape[-1])
    if not 1 <= patch <= tiles <= size:
        raise ValueError(f"need 1 <= patch ({patch}) <= tiles ({tiles}) <= crop size ({size})")
    run = run or predictor.probabilities
    edges = np.round(np.linspace(0, size, tiles + 1)).astype(int)
    steps = tiles - patch + 1
    base = predictor.normalize(np.asarray(crop)[None])
    probs = _probabilities(base, edges, steps, patch, run)
    if target is None:
        target = int(np.argmax(probs[0]))
    if not 0 <= target < probs.shape[1]:
        raise ValueError(f"target {target} is not one of the model's {probs.shape[1]} classes")
    falls = (probs[0, target] - probs[1:, target]).reshape(steps, steps).astype(np.float64)
    drops = _per_tile(falls, tiles, patch)
    importance = np.clip(drops, 0.0, None)
    peak = importance.max()
    grid = importance / peak if peak > 0 else np.zeros_like(importance)
    return Explanation(grid, drops, target, float(probs[0, target]), len(probs))


def _probabilities(base: np.ndarray, edges: np.ndarray, steps: int, patch: int, run: Run) -> np.ndarray:
    """Probabilities [1 + steps**2, classes]: the whole image first, then each occluded copy, row by row."""
    positions = [None] + [(r, c) for r in range(steps) for c in range(steps)]
    out = []
    for start in range(0, len(positions), MAX_CHUNK):
        part = positions[start:start + MAX_CHUNK]
        batch = np.repeat(base, len(part), axis=0)
        for row, at in zip(batch, part):
            if at is not None:
                r, c = at
                row[:, edges[r]:edges[r + patch], edges[c]:edges[c + patch]] = GREY
        out.append(np.asarray(run(batch), dtype=np.float64))
    return np.concatenate(out)


def _per_tile(falls: np.ndarray, tiles: int, patch: int) -> np.ndarray:
    """Each tile's mean fall over the patch positions that covered it."""
    total, count = np.zeros((tiles, tiles)), np.zeros((tiles, tiles))
    for r, c in np.ndindex(falls.shape):
        total[r:r + patch, c:c + patch] += falls[r, c]
        count[r:r + patch, c:c + patch] += 1
    return total / count


def crop_fractions(width: int, height: int, image_size: int) -> dict:
    """Where the model's crop lies in a width x height picture, as fractions of its width and height
    ({left, top, width, height}): a client draws the grid over exactly that part of its preview."""
    left, top, right, bottom = eval_crop_box(width, height, image_size)
    return {"left": left / width, "top": top / height,  # min(): float rounding may not pass the edge
            "width": min(1.0, (right - left) / width), "height": min(1.0, (bottom - top) / height)}
