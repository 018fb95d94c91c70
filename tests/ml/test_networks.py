"""The catalogue of networks: its figures match torchvision's weights enums, and the hints order
networks sensibly for small and huge datasets."""
from __future__ import annotations

import pytest

from app.ml import networks
from tests.weights_support import place_random_weights, weights_folder

TORCHVISION = [name for name, spec in networks.CATALOGUE.items() if spec.weights is not None]


def test_the_offer_is_the_one_the_issue_asks_for():
    assert set(TORCHVISION) == {"resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny"}
    assert networks.CATALOGUE["efficientnet_lite0"].weights is None  # built in


@pytest.mark.parametrize("name", TORCHVISION)
def test_catalogue_figures_match_the_torchvision_enum(name):
    from torchvision.models import get_weight

    spec = networks.CATALOGUE[name]
    enum = get_weight(spec.weights.enum)
    assert spec.weights.url == enum.url
    assert spec.params == enum.meta["num_params"]
    assert spec.imagenet_top1 == enum.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert spec.gflops == enum.meta["_ops"] and spec.weights.size_mb == enum.meta["_file_size"]
    assert tuple(enum.transforms().mean) == spec.mean and tuple(enum.transforms().std) == spec.std
    assert spec.min_image_size >= enum.meta["min_size"][0]


@pytest.mark.parametrize("name", TORCHVISION)
def test_hash_prefix_is_the_one_torch_hub_checks(name):
    import torch.hub

    file_name = networks.CATALOGUE[name].weights.file_name
    assert networks.HASH_REGEX.pattern == torch.hub.HASH_REGEX.pattern
    assert networks.CATALOGUE[name].weights.sha256_prefix == torch.hub.HASH_REGEX.search(file_name).group(1)
    assert len(networks.CATALOGUE[name].weights.sha256_prefix) >= 6


def test_lite0_figures_match_the_built_model():
    from app.ml import efficientnet_lite

    model = efficientnet_lite.load_pretrained(224, with_imagenet_head=True)
    assert sum(p.numel() for p in model.parameters()) == networks.CATALOGUE["efficientnet_lite0"].params


def test_installed_means_the_official_file_is_in_the_weights_folder(tmp_path, monkeypatch):
    with weights_folder(None):
        monkeypatch.delenv("WEIGHTS_DIR", raising=False)
        assert networks.weights_dir() is None and not networks.architecture_info("resnet50").installed
        monkeypatch.setenv("WEIGHTS_DIR", str(tmp_path))
        assert networks.weights_dir() == tmp_path  # the library on its own follows the environment
    with weights_folder(tmp_path / "w"):
        assert networks.weights_path("resnet50") == tmp_path / "w" / "resnet50-11ad3fa6.pth"
        assert networks.weights_path("efficientnet_lite0") is None
        assert not networks.architecture_info("resnet50").available
        place_random_weights("resnet50")
        assert networks.architecture_info("resnet50").available


def _infos(tmp_path, installed):
    with weights_folder(tmp_path):
        for name in installed:
            networks.weights_path(name).parent.mkdir(parents=True, exist_ok=True)
            networks.weights_path(name).write_bytes(b"x")  # presence is what counts for the listing
        return networks.list_architectures()


def test_order_favours_accuracy_on_small_data_and_speed_on_huge_data(tmp_path, monkeypatch):
    monkeypatch.setattr(networks, "measured_figures", lambda: {"machine": "test", "networks": {
        "efficientnet_lite0": {"images_per_s": 60.0, "accuracy": 0.94}, "mobilenet_v3_large": {"images_per_s": 90.0},
        "convnext_tiny": {"images_per_s": 8.0}, "resnet50": {"images_per_s": 12.0}}})
    infos = _infos(tmp_path, ["mobilenet_v3_large", "convnext_tiny", "resnet50"])
    small = [i.name for i in networks.order_for_dataset(infos, 400)]
    assert small[:4] == ["convnext_tiny", "resnet50", "mobilenet_v3_large", "efficientnet_lite0"]
    huge = [i.name for i in networks.order_for_dataset(infos, 200_000)]
    assert huge[0] == "mobilenet_v3_large" and huge.index("convnext_tiny") > huge.index("efficientnet_lite0")
    # not installed: after every usable network; from-scratch networks after the pretrained ones
    assert small[4:6] == ["small_cnn", "small_resnet"] and set(small[6:]) == {"resnet18", "efficientnet_b0"}
    hint = networks.hint(networks.architecture_info("efficientnet_lite0"), 600)
    assert hint.accuracy == 0.94 and hint.seconds == pytest.approx(10.0) and hint.imagenet_top1 == 75.1



def test_shipped_figures_cover_every_pretrained_network_and_order_sensibly(tmp_path):
    figures = networks.measured_figures()["networks"]
    for name, spec in networks.CATALOGUE.items():
        if spec.pretrained:
            assert figures[name]["images_per_s"] > 0, name
    assert 0.5 < figures["efficientnet_lite0"]["accuracy"] <= 1.0
    infos = _infos(tmp_path, [n for n, s in networks.CATALOGUE.items() if s.weights is not None])
    small = [i.name for i in networks.order_for_dataset(infos, 400)]
    huge = [i.name for i in networks.order_for_dataset(infos, 200_000)]
    assert small[:2] == ["convnext_tiny", "resnet50"]
    assert set(huge[:2]) == {"mobilenet_v3_large", "efficientnet_b0"} and huge.index("resnet50") > 2
