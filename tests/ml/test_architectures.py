import pytest
import torch

from app.ml import (ArchitectureUnavailable, UnknownArchitecture, build_model, get_architecture,
                    list_architectures)
from tests.weights_support import generated_weights, place_random_weights, weights_folder


def test_registry_lists_every_architecture_with_plain_description():
    infos = {a.name: a for a in list_architectures()}
    assert set(infos) == {"efficientnet_lite0", "resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0",
                          "convnext_tiny", "small_cnn", "small_resnet"}
    lite = infos["efficientnet_lite0"]
    assert lite.available and lite.pretrained and lite.default_image_size == 224 and lite.builtin
    assert lite.mean == pytest.approx((127 / 255,) * 3)  # TF-Lite preprocessing, not ImageNet's
    assert infos["resnet18"].mean == pytest.approx((0.485, 0.456, 0.406))
    assert all(a.description and a.label for a in infos.values())
    assert not infos["small_cnn"].pretrained and infos["small_cnn"].available
    dims = {name: infos[name].feature_dim for name in ("resnet18", "resnet50", "mobilenet_v3_large",
                                                        "efficientnet_b0", "convnext_tiny")}
    assert dims == {"resnet18": 512, "resnet50": 2048, "mobilenet_v3_large": 1280, "efficientnet_b0": 1280,
                    "convnext_tiny": 768}


def test_unknown_architecture_is_a_keyerror():
    with pytest.raises(UnknownArchitecture) as exc:
        get_architecture("vgg99")
    assert isinstance(exc.value, KeyError)
    assert "vgg99" in str(exc.value)


def test_network_without_weights_is_refused_without_showing_a_path(tmp_path):
    with weights_folder(tmp_path):
        info = {a.name: a for a in list_architectures()}["resnet18"]
        assert not info.available and not info.installed and info.installable
        assert info.reason == "not installed on this server — an admin can add it"
        with pytest.raises(ArchitectureUnavailable) as exc:
            build_model("resnet18", 3)
    assert str(tmp_path) not in exc.value.reason and ".pth" not in exc.value.reason
    assert "ResNet-18 is not installed on this server" in exc.value.reason


def test_installed_weights_load_into_the_backbone(tmp_path):
    from torchvision.models import resnet18

    with weights_folder(tmp_path):
        place_random_weights("resnet18")  # random weights, written under the official file name
        model = build_model("resnet18", 3)
    reference = resnet18(weights=None)
    import io
    reference.load_state_dict(torch.load(io.BytesIO(generated_weights("resnet18")), weights_only=True))
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)
    assert model.feature_dim == 512


def test_damaged_installed_file_is_a_clear_refusal(tmp_path):
    with weights_folder(tmp_path):
        (tmp_path / "resnet18-f37072fd.pth").write_bytes(b"not a checkpoint")
        assert get_architecture("resnet18").available  # the file is there ...
        with pytest.raises(ArchitectureUnavailable) as exc:
            build_model("resnet18", 3)  # ... but it is refused when loaded
    assert "cannot be loaded; an admin can install them again" in exc.value.reason


@pytest.mark.parametrize("name", ["small_cnn", "small_resnet"])
@pytest.mark.parametrize("size", [32, 64, 224])
def test_scratch_networks_work_across_sizes(name, size):
    model = build_model(name, 5, image_size=size).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 5)
