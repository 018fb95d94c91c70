"""Build step: download the torchvision ImageNet weights into TORCH_HOME and check the app finds them."""
import os

import torch
from torchvision.models import get_weight

from app.ml.architectures import torchvision_weight_path

WEIGHTS = {"resnet18": "ResNet18_Weights.IMAGENET1K_V1",
           "mobilenet_v3_large": "MobileNet_V3_Large_Weights.IMAGENET1K_V2"}

for arch, name in WEIGHTS.items():
    torch.hub.load_state_dict_from_url(get_weight(name).url, progress=False, check_hash=True)
    path = torchvision_weight_path(arch)
    assert os.path.isfile(path), f"{arch}: expected the weights at {path}"
    print(f"{arch}: {path}")
