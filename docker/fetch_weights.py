"""Build step: download pretrained weights into WEIGHTS_DIR, checked exactly as Admin -> Networks checks
them (SHA-256 prefix, strict load into the architecture), so the image works without internet access.

Usage: WEIGHTS_DIR=/opt/weights python docker/fetch_weights.py resnet18 mobilenet_v3_large   ("all": every
network with a weights file; no names: nothing to do).
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: the `app` package

from app.ml import weights  # noqa: E402
from app.ml.networks import CATALOGUE, architecture_info, weights_dir  # noqa: E402

names = sys.argv[1:]
if names == ["all"]:
    names = [name for name, spec in CATALOGUE.items() if spec.weights is not None]
assert weights_dir() is not None, "set WEIGHTS_DIR"
os.makedirs(weights_dir(), exist_ok=True)
for name in names:
    if architecture_info(name).installed:
        print(f"{name}: already installed")
        continue
    path = weights.download(name)
    assert architecture_info(name).available, f"{name}: not usable after installing {path}"
    print(f"{name}: {path} ({path.stat().st_size / 2**20:.1f} MB)")
