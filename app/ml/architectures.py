"""Building the registered networks: backbone (images -> feature vectors) + head (features -> logits).

What each network is, and whether its weights are installed, is app.ml.networks (torch-free); its
names are re-exported here for the callers that build models.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from . import efficientnet_lite, small_nets
from .errors import ArchitectureUnavailable, WeightsError
from .words import N_
from .networks import (  # noqa: F401  (re-exported: the public names of the registry)
    DEFAULT_ARCHITECTURE, IMAGENET_MEAN, IMAGENET_STD, ArchInfo, architecture_info, get_architecture,
    installed_file, list_architectures, spec,
)

log = logging.getLogger(__name__)


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


# --- torchvision networks: ImageNet weights from the installed file ---------------------------

def torchvision_network(name: str) -> nn.Module:
    """The full torchvision network (1000-class ImageNet head), randomly initialised."""
    from torchvision import models

    return {"resnet18": models.resnet18, "resnet50": models.resnet50,
            "mobilenet_v3_large": models.mobilenet_v3_large, "efficientnet_b0": models.efficientnet_b0,
            "convnext_tiny": models.convnext_tiny}[name](weights=None)


def _drop_imagenet_head(name: str, model: nn.Module) -> nn.Module:
    """Keep everything up to the pooled feature vector (and the pretrained layers on it)."""
    if name.startswith("resnet"):
        model.fc = nn.Identity()
    elif name == "mobilenet_v3_large":
        model.classifier[3] = nn.Identity()   # keep the pretrained 960->1280 layer
    elif name == "efficientnet_b0":
        model.classifier = nn.Identity()      # (Dropout, Linear) after the pooled 1280 features
    elif name == "convnext_tiny":
        model.classifier[2] = nn.Identity()   # keep the pretrained LayerNorm before the Linear
    return model


def load_imagenet_weights(name: str, path: str | Path) -> nn.Module:
    """The full ImageNet network with the weights file at `path` loaded strictly (every tensor present,
    none left over, shapes equal). Raises WeightsError with a plain message when it does not fit."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip/pickle errors, truncated files: all mean "not a weights file"
        raise WeightsError.because(N_("The file is not a readable PyTorch weights file (%(error)s)."),
                                   error=type(exc).__name__) from None
    if not isinstance(state, dict):
        raise WeightsError.because(N_("The file does not hold a state dict (a mapping of tensor names to weights)."))
    model = torchvision_network(name)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[:2]
        raise WeightsError.because(N_("The file does not fit %(network)s: %(detail)s"), network=spec(name).label,
                                   detail=" ".join(first)[:300]) from None  # torch's own words: English
    return model


def _build_torchvision(name: str, pretrained: bool) -> tuple[nn.Module, int]:
    if not pretrained:
        return _drop_imagenet_head(name, torchvision_network(name)), spec(name).feature_dim
    try:
        path = installed_file(name)
        if path is None:
            raise ArchitectureUnavailable.because(N_("%(network)s is not installed on this server."),
                                                  network=spec(name).label)
        model = load_imagenet_weights(name, path)
    except WeightsError as exc:
        log.error("weights of %s do not load: %s", name, exc)
        raise ArchitectureUnavailable.because(N_("The installed weights of %(network)s cannot be loaded; an admin "
                                                 "can install them again. (%(detail)s)"),
                                              network=spec(name).label, detail=exc.line or exc.message) from None
    return _drop_imagenet_head(name, model), spec(name).feature_dim


def _build_efficientnet_lite0(image_size: int, pretrained: bool):
    if pretrained:
        return efficientnet_lite.load_pretrained(image_size), efficientnet_lite.FEATURE_DIM
    return efficientnet_lite.EfficientNetLite0Features(image_size), efficientnet_lite.FEATURE_DIM


_OWN_BUILDERS = {
    "efficientnet_lite0": _build_efficientnet_lite0,
    "small_cnn": small_nets.build_small_cnn,
    "small_resnet": small_nets.build_small_resnet,
}


def build_backbone(name: str, image_size: int | None = None, pretrained: bool = True):
    """(backbone module, feature_dim). Pretrained weights come from installed files only; pretrained=False
    builds random weights whether or not the weights are installed (tests, benches)."""
    info = architecture_info(name) if not pretrained else get_architecture(name)
    size = image_size or info.default_image_size
    if name in _OWN_BUILDERS:
        return _OWN_BUILDERS[name](size, pretrained and info.pretrained)
    return _build_torchvision(name, pretrained and info.pretrained)


def build_model(name: str, num_classes: int, pretrained: bool = True, *, image_size: int | None = None,
                head: str = "linear", dropout: float = 0.0) -> ClassifierModel:
    """Backbone + fresh head for num_classes. pretrained=False gives random init (testing only)."""
    backbone, feature_dim = build_backbone(name, image_size, pretrained)
    return ClassifierModel(backbone, make_head(head, feature_dim, num_classes, dropout), feature_dim)
