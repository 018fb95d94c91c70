import os

import pytest
import torch

from app.ml import (ArchitectureUnavailable, UnknownArchitecture, build_model, get_architecture,
                    list_architectures, torchvision_weight_path)


def test_registry_lists_every_architecture_with_plain_description():
    infos = {a.name: a for a in list_architectures()}
    assert set(infos) == {"efficientnet_lite0", "resnet18", "mobilenet_v3_large", "small_cnn", "small_resnet"}
    lite = infos["efficientnet_lite0"]
    assert lite.available and lite.pretrained and lite.default_image_size == 224
    assert lite.mean == pytest.approx((127 / 255,) * 3)  # TF-Lite preprocessing, not ImageNet's
    assert all(a.description and a.label for a in infos.values())
    assert not infos["small_cnn"].pretrained and infos["small_cnn"].available


def test_unknown_architecture_is_a_keyerror():
    with pytest.raises(UnknownArchitecture) as exc:
        get_architecture("vgg99")
    assert isinstance(exc.value, KeyError)
    assert "vgg99" in str(exc.value)


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_resnet18_without_weights_is_refused_with_reason(empty_torch_home):
    info = {a.name: a for a in list_architectures()}["resnet18"]
    assert not info.available
    expected = os.path.join(str(empty_torch_home), "hub", "checkpoints", "resnet18-f37072fd.pth")
    assert expected in info.reason and "not installed" in info.reason
    with pytest.raises(ArchitectureUnavailable) as exc:
        build_model("resnet18", 3)
    assert exc.value.reason == info.reason


def test_resnet18_loads_local_weights_file(empty_torch_home):
    from torchvision.models import resnet18

    path = torchvision_weight_path("resnet18")
    os.makedirs(os.path.dirname(path))
    reference = resnet18(weights=None)
    torch.save(reference.state_dict(), path)
    model = build_model("resnet18", 3)
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)
    assert model.feature_dim == 512


@pytest.mark.parametrize("name", ["small_cnn", "small_resnet"])
@pytest.mark.parametrize("size", [32, 64, 224])
def test_scratch_networks_work_across_sizes(name, size):
    model = build_model(name, 5, image_size=size).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 5)
