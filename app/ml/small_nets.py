"""Small networks trained from scratch, sized by the input image size."""
from __future__ import annotations

from torch import nn


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def _stage_count(image_size: int) -> int:
    """Downsample until the feature map is about 4-7 px: 32 -> 3 stages, 64 -> 4, 128+ -> 5."""
    stages, size = 0, image_size
    while size > 7 and stages < 5:
        size //= 2
        stages += 1
    return max(stages, 2)


def build_small_cnn(image_size: int, pretrained: bool = False):
    """Plain VGG-style CNN: two 3x3 convs per stage, max-pool between stages."""
    widths = [32, 64, 128, 256, 256][: _stage_count(image_size)]
    layers, cin = [], 3
    for i, width in enumerate(widths):
        layers += [_conv_bn(cin, width), _conv_bn(width, width)]
        if i < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
        cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
    return nn.Sequential(*layers), cin


class BasicBlock(nn.Module):
    """ResNet basic block with a 1x1 projection shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


def build_small_resnet(image_size: int, pretrained: bool = False):
    """ResNet-style: 3x3 stem, one (two if space allows) basic blocks per stage."""
    stages = _stage_count(image_size)
    widths = [32, 64, 128, 256, 256][:stages]
    layers = [_conv_bn(3, widths[0])]
    cin = widths[0]
    for i, width in enumerate(widths):
        layers.append(BasicBlock(cin, width, 1 if i == 0 else 2))
        layers.append(BasicBlock(width, width, 1))
        cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
    return nn.Sequential(*layers), cin
