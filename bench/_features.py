"""Shared by the feature benches: generated image sets and the feature floor of this machine.

The floor of a feature pass over some images is what the fastest runtime here needs for the two
unavoidable parts, measured separately in the same run: decoding + cropping every image with the
work spread over all cores (the decode pool alone, nothing else running), plus the bare ONNX Runtime
forward pass of the backbone over that many images (already decoded, batch after batch). A pass that
overlaps the two can beat the floor; one that does them one after the other at best meets it.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench._common import ROOT

GENERATED = ROOT / "instance" / "bench-data"
CLASSES = 10


def _draw(args: tuple[Path, int, int]) -> None:
    """One photo-sized JPEG of class `label`: a class colour and grating orientation, random phase,
    frequency jitter and noise (so images differ and a pretrained backbone tells classes apart)."""
    from PIL import Image

    path, label, seed = args
    rng = np.random.default_rng(seed)
    h, w = 240, 320
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = np.pi * label / CLASSES + rng.normal(0, 0.05)
    freq = 0.05 + 0.01 * (label % 3) + rng.normal(0, 0.003)
    wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) * freq * 2 * np.pi + rng.uniform(0, 6.3))
    hue = np.array([np.sin(label * 0.6) + 1, np.sin(label * 0.6 + 2.1) + 1, np.sin(label * 0.6 + 4.2) + 1]) * 110
    pixels = hue + 60 * wave[..., None] + rng.normal(0, 18, (h, w, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=85)


def generated_images(count: int) -> list[tuple[str, int]]:
    """(path, label) of `count` generated JPEGs (320x240, 10 classes), made once and kept under
    instance/bench-data so later runs read the same files."""
    folder = GENERATED / f"grating-{count}-v1"
    items = [(folder / f"{i % CLASSES}" / f"{i:06d}.jpg", i % CLASSES, i) for i in range(count)]
    missing = [item for item in items if not item[0].exists()]
    if missing:
        for label in range(CLASSES):
            (folder / str(label)).mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
            list(pool.map(_draw, missing, chunksize=64))
    return [(str(path), label) for path, label, _ in items]


def warm(paths) -> None:
    """Read every file once so neither measured pass pays for cold disk reads."""
    for path in paths:
        with open(path, "rb") as fh:
            fh.read()


@dataclass
class Floor:
    images: int
    decode_s: float    # decode + crop of every image, spread over all cores
    forward_s: float   # bare ONNX Runtime forward of that many images

    @property
    def seconds(self) -> float:
        return self.decode_s + self.forward_s


def measure_floor(paths, how, sample: int | None = None) -> Floor:
    """The floor for these paths with this FeaturePass's backbone (ONNX Runtime) and preprocessing.
    sample: decode only that many of the paths and scale up (for very large sets; said in the notes)."""
    from app.ml.embeddings import BATCH
    from app.ml.pipeline import DecodeSpec, decoded_batches

    chosen = list(paths)[:sample] if sample else list(paths)
    spec = DecodeSpec(how.prep.image_size, how.prep.mean, how.prep.std, BATCH, how.threads)
    started = time.perf_counter()
    first = None
    for batch in decoded_batches(chosen, range(len(chosen)), spec):
        first = batch.images if first is None and len(batch.indices) == BATCH else first
    decode = (time.perf_counter() - started) * len(paths) / len(chosen)
    how.backbone(first)  # warm-up: one-off allocations are not part of a pass
    started = time.perf_counter()
    for _ in range(-(-len(paths) // BATCH)):
        how.backbone(first)
    return Floor(len(paths), decode, time.perf_counter() - started)
