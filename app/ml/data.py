"""Data side of training: samples, stratified splits, decoded-image cache and transforms."""
from __future__ import annotations

import logging
import math
import os
import random
import threading
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch
from PIL import Image, ImageOps
from torchvision.transforms import v2

# decoded_short_side: the cache and JPEG draft decoding keep the short side at about size * DECODE_RATIO
from .reference import DECODE_RATIO, decoded_short_side  # noqa: F401  (torch-free, shared with preprocess.py)
from .files import local_file
from .trainable import check_trainable  # noqa: F401  (its old home: callers import it from here too)

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
EVAL_CROP_RATIO = 0.875   # eval: resize to size/0.875, centre-crop size (the ImageNet habit)


@dataclass(frozen=True)
class Sample:
    """One labelled image on disk. label indexes the classes list given to train()."""

    image_id: int
    path: str
    label: int


# --- splits -----------------------------------------------------------------------------------

def _class_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(n_val, n_test) for a class of n images; train always keeps at least one."""
    if n <= 1:
        return 0, 0
    if n == 2:
        if val_fraction > 0:
            return 1, 0
        return 0, 1 if test_fraction > 0 else 0
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    while n - n_val - n_test < 1:  # only reachable with extreme fractions
        if n_test >= n_val and n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
    return n_val, n_test


def stratified_split(labels: Sequence[int], val_fraction: float = 0.15, test_fraction: float = 0.15,
                     seed: int = 0) -> dict[str, list[int]]:
    """Indices into labels for 'train', 'val', 'test', stratified per class and seeded.

    Same labels + same seed -> same split. Classes of 1 image go to train; of 2 images to
    train + val (or train + test when val_fraction is 0). No class ends up without a train image.
    """
    import numpy as np  # vectorised: a run over 200,000 images is split inside the "Start training" request

    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    order = np.argsort(labels, kind="stable")  # indices grouped by class, each group in index order
    classes, starts, sizes = np.unique(labels[order], return_index=True, return_counts=True)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for start, size in zip(starts.tolist(), sizes.tolist()):
        indices = rng.permutation(order[start:start + size])
        n_val, n_test = _class_counts(size, val_fraction, test_fraction)
        parts["val"].append(indices[:n_val])
        parts["test"].append(indices[n_val:n_val + n_test])
        parts["train"].append(indices[n_val + n_test:])
    return {name: np.sort(np.concatenate(chunks)).tolist() if chunks else [] for name, chunks in parts.items()}


def validate_split(split: Mapping[str, Sequence[int]], n: int) -> dict[str, list[int]]:
    """Check a caller-provided (frozen) split against n samples; returns a clean copy."""
    clean = {name: sorted(int(i) for i in split.get(name, ())) for name in SPLITS}
    extra = set(split) - set(SPLITS)
    if extra:
        raise ValueError(f"split has unknown parts: {sorted(extra)}")
    seen: set[int] = set()
    for name in SPLITS:
        for i in clean[name]:
            if not 0 <= i < n:
                raise ValueError(f"split index {i} is out of range for {n} samples")
            if i in seen:
                raise ValueError(f"sample {i} appears twice in the split")
            seen.add(i)
    if not clean["train"]:
        raise ValueError("split has no training samples")
    return clean


# --- decoding and the in-memory cache ------------------------------------------------------

def shrink_for_cache(img: Image.Image, image_size: int) -> Image.Image:
    """Resize so the short side is about image_size * 1.15 (never keeps more pixels than needed)."""
    target = decoded_short_side(image_size)
    w, h = img.size
    scale = target / min(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == img.size:
        return img
    return img.resize(size, Image.BILINEAR, reducing_gap=None if scale > 1 else 3.0)


def reduce_on_decode(img: Image.Image, image_size: int | None) -> None:
    """Before pixels are read: let a JPEG decode at 1/2, 1/4 or 1/8 scale when that still keeps the
    short side at decoded_short_side(image_size) or more (DCT-domain downscale, several times faster
    for phone photos). Training and serving both decode this way, so they see the same pixels."""
    if image_size and img.format == "JPEG":
        target = decoded_short_side(image_size)
        img.draft("RGB", (target, target))


def decode_in_one_call(img: Image.Image, file_bytes: int) -> None:
    """Before pixels are read: let Pillow hand the decoder the whole file at once. By default it feeds
    64 KiB at a time and takes the GIL back between blocks; with other Python threads busy (a web
    process's request threads, a feature job's pipeline) each take-back can wait up to the switch
    interval (5 ms). Measured with one busy Python thread: a 2 MB photo decoded in 207 ms instead of 38,
    a 100 KB one in 15.8 ms instead of 8.4."""
    img.decodermaxblock = max(img.decodermaxblock, file_bytes)


def as_rgb(img: Image.Image) -> Image.Image:
    """The image in RGB: itself when it already is (convert() would copy it)."""
    return img if img.mode == "RGB" else img.convert("RGB")


def oriented_rgb(img: Image.Image) -> Image.Image:
    """A decoded image turned as its EXIF orientation tag says, in RGB. Turned in place: exif_transpose
    otherwise copies every image, turned or not, and convert("RGB") copied it again (a quarter of the
    time of decoding a 500x375 JPEG, with the GIL held part of it)."""
    ImageOps.exif_transpose(img, in_place=True)
    return as_rgb(img)


def load_rgb(path: str, image_size: int | None = None, shrink: bool = True) -> Image.Image:
    """Open a file, apply EXIF orientation, first frame, RGB. With image_size: decoded at a reduced
    JPEG scale when possible, then (shrink) resized to the cache size."""
    local = local_file(path)
    with Image.open(local) as img:
        decode_in_one_call(img, os.path.getsize(local))
        reduce_on_decode(img, image_size)
        img = oriented_rgb(img)
    return shrink_for_cache(img, image_size) if image_size and shrink else img


def load_eval_crop(path: str, image_size: int) -> torch.Tensor:
    """A file -> its evaluation crop, uint8 [3,size,size] (see eval_crop_pil)."""
    return eval_crop_pil(load_rgb(path, image_size, shrink=False), image_size)


def pil_to_uint8(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> uint8 tensor [3, H, W]."""
    return v2.functional.pil_to_tensor(img)


class DecodedImageCache:
    """Decode each image once per run and keep uint8 tensors [3,H,W] in memory, up to max_bytes.

    Past the limit images are decoded again each time they are needed (slower, but a large
    dataset then trains instead of exhausting the worker's memory).
    """

    def __init__(self, paths: Sequence[str], image_size: int, max_bytes: int | None = None,
                 eval_crops: bool = False):
        self.paths = list(paths)
        self.image_size = image_size
        self.max_bytes = max_bytes
        # eval_crops: keep each image's evaluation crop (size x size) instead of a shrunk whole image,
        # for training without random crops: every view then is exactly the evaluation crop.
        self.eval_crops = eval_crops
        self.bytes = 0
        self._images: dict[int, torch.Tensor] = {}
        self._lock = threading.Lock()  # batches are loaded from several threads on a GPU

    def __len__(self) -> int:
        return len(self.paths)

    def __contains__(self, index: int) -> bool:
        return index in self._images

    def get(self, index: int) -> torch.Tensor:
        """The decoded image; kept for next time when it fits under max_bytes."""
        image = self._images.get(index)
        if image is None:
            if self.eval_crops:
                image = load_eval_crop(self.paths[index], self.image_size)
            else:
                image = pil_to_uint8(load_rgb(self.paths[index], self.image_size))
            size = image.numel() * image.element_size()
            with self._lock:
                if index not in self._images and (self.max_bytes is None or self.bytes + size <= self.max_bytes):
                    self._images[index] = image
                    self.bytes += size
        return image

    def decode_all(self, indices: Sequence[int]) -> Iterator[int]:
        """Decode the given indices, yielding after each one (for progress / cancel)."""
        for i in indices:
            self.get(i)
            yield i


# --- transforms -------------------------------------------------------------------------------

def eval_resize_size(image_size: int) -> int:
    return int(round(image_size / EVAL_CROP_RATIO))


def training_image_cache(paths: Sequence[str], image_size: int, random_resized_crop: bool,
                         max_bytes: int | None = None) -> "DecodedImageCache":
    """The decoded-image cache a training run reads its training images from: shrunk whole images to
    crop at random, or (random crops off) each image's evaluation crop, so that "off" trains on
    exactly the pixels validation, test and serving see (flipped only when mirroring is on)."""
    return DecodedImageCache(paths, image_size, max_bytes, eval_crops=not random_resized_crop)


def train_transform(image_size: int, mean, std, random_resized_crop: bool = True,
                    hflip: bool = True) -> v2.Compose:
    """uint8 [3,H,W] -> float normalised [3,size,size], randomly augmented; without random crops the
    evaluation crop (resize the short side to size/0.875, centre crop), flipped only with hflip."""
    if random_resized_crop:
        crop = [v2.RandomResizedCrop(image_size, scale=(0.35, 1.0), antialias=True)]
    else:
        crop = [v2.Resize(eval_resize_size(image_size), antialias=True), v2.CenterCrop(image_size)]
    flip = [v2.RandomHorizontalFlip()] if hflip else []
    return v2.Compose(crop + flip + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def eval_crop_image(img: Image.Image, image_size: int) -> Image.Image:
    """RGB image -> its size x size evaluation crop: the preprocessing the model card documents (resize
    the short side to size/0.875, bilinear and antialiased, then centre-crop size x size). Computed as
    one resize of just the crop's box: the same pixels, about 40% less work than resizing everything.
    Validation, test, features and serving all use it, so metrics and predictions agree."""
    return img.resize((image_size, image_size), Image.BILINEAR, box=eval_crop_box(*img.size, image_size))


def eval_crop_box(width: int, height: int, image_size: int) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the evaluation crop in a width x height image's pixels (see
    eval_crop_image): what part of a picture the model sees, e.g. to draw an explanation over it."""
    out_h, out_w = _resized_shape((height, width), eval_resize_size(image_size))
    top, left = int(round((out_h - image_size) / 2.0)), int(round((out_w - image_size) / 2.0))
    sx, sy = width / out_w, height / out_h
    return (left * sx, top * sy, (left + image_size) * sx, (top + image_size) * sy)


def eval_crop_pil(img: Image.Image, image_size: int) -> torch.Tensor:
    """RGB image -> uint8 [3,size,size] (see eval_crop_image)."""
    return pil_to_uint8(eval_crop_image(img, image_size))


def normalize(batch_uint8: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 [N,3,H,W] (any device) -> float32 normalised."""
    mean_t = torch.tensor(mean, device=batch_uint8.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=batch_uint8.device).view(1, 3, 1, 1)
    return (batch_uint8.float() / 255.0 - mean_t) / std_t


def preprocess_pil(img: Image.Image, image_size: int) -> torch.Tensor:
    """An already decoded image -> its evaluation crop, uint8 [3,size,size]."""
    return eval_crop_pil(as_rgb(img), image_size)


def _resized_shape(shape, short_side: int) -> tuple[int, int]:
    """(height, width) after v2.Resize(short_side) on an image of `shape` (short side scaled)."""
    height, width = int(shape[0]), int(shape[1])
    if height <= width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


class Augmenter:
    """Seeded train-time augmentation on uint8 tensors -> uint8 [3,size,size].

    Uses its own random.Random (not torch's global generator) so results do not depend on
    which thread runs it or on what the model consumes from torch's RNG meanwhile.
    """

    def __init__(self, image_size: int, seed: int, random_resized_crop: bool = True, hflip: bool = True,
                 scale: tuple[float, float] = (0.35, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)):
        self.size = image_size
        self.rng = random.Random(seed)
        self.rrc, self.hflip, self.scale = random_resized_crop, hflip, scale
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self._resize = v2.Resize(eval_resize_size(image_size), antialias=True)

    def _crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        area = height * width
        for _ in range(10):
            target = area * self.rng.uniform(*self.scale)
            aspect = math.exp(self.rng.uniform(*self.log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return self.rng.randint(0, height - h), self.rng.randint(0, width - w), h, w
        side = min(height, width)
        return (height - side) // 2, (width - side) // 2, side, side

    def plan(self, image: torch.Tensor) -> tuple:
        """Draw this image's random parameters (sequentially, from the seeded generator). Without
        random crops nothing about the crop is random: it is the evaluation crop."""
        crop = self._crop_box(*image.shape[-2:]) if self.rrc else None
        flip = self.hflip and self.rng.random() < 0.5
        return crop, flip

    def apply(self, image: torch.Tensor, params: tuple) -> torch.Tensor:
        """Apply drawn parameters; pure, so batches can be augmented in parallel threads."""
        F = v2.functional
        crop, flip = params
        if self.rrc:
            top, left, h, w = crop
            out = F.resized_crop(image, top, left, h, w, [self.size, self.size], antialias=True)
        elif tuple(image.shape[-2:]) == (self.size, self.size):
            out = image  # already the evaluation crop (training_image_cache keeps those)
        else:
            out = F.center_crop(self._resize(image), [self.size, self.size])
        return F.horizontal_flip(out) if flip else out

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.apply(image, self.plan(image))
