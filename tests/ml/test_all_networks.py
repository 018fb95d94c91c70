"""Every registered pretrained network builds with its installed weights, trains one Quick epoch, exports
to ONNX and serves; and one fine-tune step reaches its first layer.

The torchvision networks run with RANDOM WEIGHTS here (this machine cannot fetch the real ones): the
test checks the plumbing - feature size, normalisation, every training mode, export, serving - not what
the networks learnt. EfficientNet-Lite0 uses its real, built-in weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from app.ml import Predictor, TrainOptions, get_architecture, train
from app.ml.architectures import build_model
from app.ml.engine import TrainInputs
from app.ml.networks import CATALOGUE
from tests.weights_support import place_random_weights, weights_folder

PRETRAINED = [name for name, spec in CATALOGUE.items() if spec.pretrained]
SIZE = 64


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    with weights_folder(tmp_path_factory.mktemp("weights")) as folder:
        yield folder


@pytest.mark.parametrize("name", PRETRAINED)
def test_network_trains_in_every_mode_exports_and_serves(name, random_weights, toy_set, tmp_path):
    if CATALOGUE[name].weights is not None:
        place_random_weights(name)   # RANDOM weights under the official file name (flagged above)
    info = get_architecture(name)
    model = build_model(name, 2, image_size=SIZE)
    with torch.no_grad():
        assert model.backbone.eval()(torch.zeros(2, 3, SIZE, SIZE)).shape == (2, info.feature_dim)

    samples, classes = toy_set
    few = [s for s in samples if s.label == 0][:6] + [s for s in samples if s.label == 1][:6]
    quick = TrainOptions(mode="quick", architecture=name, image_size=SIZE, epochs=1, test_fraction=0.25)
    result = train(TrainInputs(few, classes), quick, tmp_path)
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["architecture"] == name and card["input"]["mean"] == pytest.approx(list(info.mean))
    assert card["export_check"]["onnx"] < 1e-3 and result.test_metrics is not None
    served = Predictor.load(tmp_path)          # ONNX Runtime, as /predict serves it
    assert served.backend == "onnx"
    probs = served.predict_proba([Image.open(s.path).convert("RGB") for s in samples[:2]])
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    _fine_tune_step(model.train())


def _fine_tune_step(model) -> None:
    """Fine-tune and feature extraction differ from Quick only in where gradients flow: one optimizer
    step must reach the first layer of the backbone (and the head)."""
    first = next(p for p in model.backbone.parameters() if p.dim() == 4)
    before = first.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 3, SIZE, SIZE)), torch.tensor([0, 1]))
    loss.backward()
    assert first.grad is not None and first.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(before, first.detach())
