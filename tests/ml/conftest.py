"""Fixtures for the ML library tests: tiny generated image sets, few torch threads."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from PIL import Image

from app.ml import Sample

torch.set_num_threads(2)

COLOURS = {"red": (200, 30, 30), "blue": (30, 40, 200), "green": (30, 180, 40)}


def make_image(path: Path, colour, rng: random.Random, size=(40, 32)) -> None:
    """A noisy image dominated by one colour, with a random darker rectangle."""
    img = Image.new("RGB", size, colour)
    px = img.load()
    for x in range(size[0]):
        for y in range(size[1]):
            r, g, b = px[x, y]
            n = rng.randint(-40, 40)
            px[x, y] = (max(0, min(255, r + n)), max(0, min(255, g + n)), max(0, min(255, b + n)))
    x0, y0 = rng.randint(0, size[0] // 2), rng.randint(0, size[1] // 2)
    img.paste(tuple(c // 2 for c in colour), (x0, y0, x0 + 8, y0 + 8))
    img.save(path, quality=90) if path.suffix == ".jpg" else img.save(path)


def make_dataset(root: Path, per_class: int, classes=("red", "blue"), seed: int = 0):
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    samples = []
    for label, name in enumerate(classes):
        for i in range(per_class):
            path = root / f"{name}_{i}.{'jpg' if i % 2 else 'png'}"
            make_image(path, COLOURS[name], rng)
            samples.append(Sample(image_id=1000 + len(samples), path=str(path), label=label))
    return samples, list(classes)


@pytest.fixture(scope="session")
def toy_set(tmp_path_factory):
    """(samples, classes): 12 red + 12 blue small images."""
    return make_dataset(tmp_path_factory.mktemp("toy"), 12)
