"""Registry of model architectures by name, and the backbone + head classifier they build."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from . import efficientnet_lite, small_nets
from .errors import ArchitectureUnavailable, UnknownArchitecture

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_ARCHITECTURE = "efficientnet_lite0"


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


class ClassifierModel(nn.Module):
    """backbone (images -> [N, feature_dim]) followed by a head (features -> logits)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, feature_dim: int):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def make_head(kind: str, feature_dim: int, num_classes: int, dropout: float = 0.0) -> nn.Module:
    """'linear': Dropout + Linear. 'mlp': Linear-ReLU-Dropout-Linear (256 hidden units)."""
    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
    if kind == "mlp":
        hidden = 256
        return nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True),
                             nn.Dropout(dropout), nn.Linear(hidden, num_classes))
    raise ValueError(f"unknown head kind {kind!r}")


# --- torchvision weights: used only when already in the torch hub cache -----------------------

def _tv_weights(name: str):
    from torchvision import models

    return {"resnet18": models.ResNet18_Weights.IMAGENET1K_V1,
            "mobilenet_v3_large": models.MobileNet_V3_Large_Weights.IMAGENET1K_V2}[name]


def torchvision_weight_path(name: str) -> str:
    """Where torch hub keeps the checkpoint for this architecture (respects TORCH_HOME)."""
    filename = os.path.basename(_tv_weights(name).url)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def _tv_reason(name: str, label: str) -> str | None:
    path = torchvision_weight_path(name)
    if os.path.isfile(path):
        return None
    return (f"ImageNet weights for {label} are not installed (expected {path}); "
            "the Docker image downloads them at build time")


def _build_resnet18(image_size: int, pretrained: bool):
    from torchvision.models import resnet18

    model = resnet18(weights=None)
    if pretrained:
        model.load_state_dict(torch.load(torchvision_weight_path("resnet18"), map_location="cpu",
                                         weights_only=True))
    model.fc = nn.Identity()
    return model, 512


def _build_mobilenet_v3_large(image_size: int, pretrained: bool):
    from torchvision.models import mobilenet_v3_large

    model = mobilenet_v3_large(weights=None)
    if pretrained:
        model.load_state_dict(torch.load(torchvision_weight_path("mobilenet_v3_large"),
                                         map_location="cpu", weights_only=True))
    model.classifier[3] = nn.Identity()  # keep the 960->1280 layer: it is pretrained
    return model, 1280


def _build_efficientnet_lite0(image_size: int, pretrained: bool):
    if pretrained:
        return efficientnet_lite.load_pretrained(image_size), efficientnet_lite.FEATURE_DIM
    return efficientnet_lite.EfficientNetLite0Features(image_size), efficientnet_lite.FEATURE_DIM


@dataclass(frozen=True)
class _Entry:
    label: str
    pretrained: bool
    default_image_size: int
    mean: tuple
    std: tuple
    description: str
    build: Callable[[int, bool], tuple[nn.Module, int]]
    feature_dim: int
    min_image_size: int
    max_image_size: int


_REGISTRY: dict[str, _Entry] = {
    "efficientnet_lite0": _Entry(
        "EfficientNet-Lite0", True, 224, efficientnet_lite.LITE_MEAN, efficientnet_lite.LITE_STD,
        "Small, fast network pretrained on ImageNet photos; the best default for everyday pictures.",
        _build_efficientnet_lite0, 1280, 64, 512),
    "resnet18": _Entry(
        "ResNet-18", True, 224, IMAGENET_MEAN, IMAGENET_STD,
        "Classic ImageNet-pretrained network; robust and simple, a bit slower than EfficientNet-Lite0.",
        _build_resnet18, 512, 64, 512),
    "mobilenet_v3_large": _Entry(
        "MobileNetV3-Large", True, 224, IMAGENET_MEAN, IMAGENET_STD,
        "Very fast ImageNet-pretrained network designed for phones; good when speed matters most.",
        _build_mobilenet_v3_large, 1280, 64, 512),
    "small_cnn": _Entry(
        "Small CNN (from scratch)", False, 64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25),
        "A small plain convolutional network trained from nothing; for small, low-resolution images.",
        small_nets.build_small_cnn, 0, 32, 224),
    "small_resnet": _Entry(
        "Small ResNet (from scratch)", False, 64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25),
        "A small residual network trained from nothing; usually a little better than Small CNN.",
        small_nets.build_small_resnet, 0, 32, 224),
}


def _info(name: str, entry: _Entry) -> ArchInfo:
    reason = None
    if name in ("resnet18", "mobilenet_v3_large"):
        reason = _tv_reason(name, entry.label)
    return ArchInfo(name=name, label=entry.label, pretrained=entry.pretrained,
                    available=reason is None, reason=reason,
                    default_image_size=entry.default_image_size, mean=tuple(entry.mean),
                    std=tuple(entry.std), description=entry.description,
                    min_image_size=entry.min_image_size, max_image_size=entry.max_image_size,
                    feature_dim=entry.feature_dim)


def list_architectures() -> list[ArchInfo]:
    """Every registered architecture, available or not (see .available / .reason)."""
    return [_info(name, entry) for name, entry in _REGISTRY.items()]


def architecture_info(name: str) -> ArchInfo:
    """ArchInfo for one name, whether available or not; UnknownArchitecture if not registered."""
    if name not in _REGISTRY:
        raise UnknownArchitecture(f"Unknown architecture {name!r}; choose one of {', '.join(_REGISTRY)}.")
    return _info(name, _REGISTRY[name])


def get_architecture(name: str) -> ArchInfo:
    """ArchInfo for a usable architecture; raises ArchitectureUnavailable(reason) otherwise."""
    info = architecture_info(name)
    if not info.available:
        raise ArchitectureUnavailable(info.reason)
    return info


def build_backbone(name: str, image_size: int | None = None, pretrained: bool = True):
    """(backbone module, feature_dim). Pretrained weights are loaded from local files only."""
    info = get_architecture(name)
    size = image_size or info.default_image_size
    entry = _REGISTRY[name]
    return entry.build(size, pretrained and entry.pretrained)


def build_model(name: str, num_classes: int, pretrained: bool = True, *, image_size: int | None = None,
                head: str = "linear", dropout: float = 0.0) -> ClassifierModel:
    """Backbone + fresh head for num_classes. pretrained=False gives random init (testing only)."""
    backbone, feature_dim = build_backbone(name, image_size, pretrained)
    return ClassifierModel(backbone, make_head(head, feature_dim, num_classes, dropout), feature_dim)
