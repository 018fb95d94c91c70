"""Feature passes: the decode pipeline, the ONNX Runtime backbone and its on-disk cache."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from torch import nn

from app.ml import data
from app.ml.architectures import get_architecture
from app.ml.backbone_runtime import RuntimeSpec, cached_paths, open_backbone
from app.ml.embeddings import FeatureSetup, ImageFiles, Preprocess, compute_features, prepare_pass
from app.ml.pipeline import DecodeSpec, decoded_batches

SIZE = 64
INFO = get_architecture("efficientnet_lite0")
PREP = Preprocess(SIZE, INFO.mean, INFO.std)


def test_pipeline_gives_the_evaluation_crop_in_order_and_skips_unreadable_files(toy_set, tmp_path):
    samples, _ = toy_set
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    paths = [s.path for s in samples[:7]] + [str(broken)]
    spec = DecodeSpec(SIZE, INFO.mean, INFO.std, batch_size=3, threads=2, skip_unreadable=True)
    batches = list(decoded_batches(paths, [7, 6, 5, 4, 3, 2, 1, 0], spec))
    assert [b.indices for b in batches] == [[6, 5], [4, 3, 2], [1, 0]]
    assert [b.unreadable for b in batches] == [[7], [], []]
    got = np.concatenate([b.images for b in batches])
    crops = torch.stack([data.load_eval_crop(paths[i], SIZE) for i in (6, 5, 4, 3, 2, 1, 0)])
    expected = data.normalize(crops, INFO.mean, INFO.std).numpy()  # what training's evaluation sees
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(OSError):
        list(decoded_batches(paths, [7], DecodeSpec(SIZE, INFO.mean, INFO.std, threads=2)))


def test_onnx_features_equal_torch_features(toy_set, tmp_path):
    samples, _ = toy_set
    files = ImageFiles([s.path for s in samples])
    onnx = prepare_pass("efficientnet_lite0", PREP, FeatureSetup(backbone_dir=tmp_path, device="cpu"))
    plain = prepare_pass("efficientnet_lite0", PREP, FeatureSetup(device="cpu"))
    assert (onnx.backbone.kind, plain.backbone.kind) == ("onnx", "torch")
    a, b = compute_features(files, onnx), compute_features(files, plain)
    assert a.vectors.shape == (len(samples), 1280) and a.ok == list(range(len(samples)))
    scale = max(1.0, float(np.abs(b.vectors).max()))
    assert float(np.abs(a.vectors - b.vectors).max()) / scale < 1e-4
    assert a.stats.runtime == "onnx" and a.stats.computed == len(samples)


def test_cached_onnx_is_reused_and_a_corrupt_one_rebuilt(toy_set, tmp_path, caplog):
    samples, _ = toy_set
    spec = RuntimeSpec("efficientnet_lite0", SIZE, "cpu", tmp_path / "backbones")
    first = open_backbone(spec)
    assert first.kind == "onnx" and first.exported_now
    path, sidecar = cached_paths(spec, first.fingerprint)
    assert first.onnx_path == path and json.loads(sidecar.read_text())["status"] == "ok"
    stamp = path.stat().st_mtime_ns
    again = open_backbone(spec)
    assert again.kind == "onnx" and not again.exported_now and path.stat().st_mtime_ns == stamp
    x = np.random.default_rng(0).normal(size=(2, 3, SIZE, SIZE)).astype(np.float32)
    reference = first(x)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a half-written / damaged file
    with caplog.at_level(logging.WARNING, logger="app.ml.backbone_runtime"):
        rebuilt = open_backbone(spec)
    assert rebuilt.kind == "onnx" and rebuilt.exported_now and "rebuilding" in caplog.text
    np.testing.assert_allclose(rebuilt(x), reference, atol=1e-5)


class _ExportsDifferently(nn.Module):
    """A 'backbone' whose ONNX export does not compute what torch computes."""

    feature_dim = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean((2, 3))
        return pooled + 1 if torch.onnx.is_in_onnx_export() else pooled


def test_an_export_that_disagrees_with_torch_is_refused(tmp_path, caplog):
    spec = RuntimeSpec("efficientnet_lite0", 32, "cpu", tmp_path)
    with caplog.at_level(logging.WARNING, logger="app.ml.backbone_runtime"):
        backbone = open_backbone(spec, _ExportsDifferently())
    assert backbone.kind == "torch" and "disagrees with torch" in caplog.text
    path, sidecar = cached_paths(spec, backbone.fingerprint)
    assert not path.exists() and json.loads(sidecar.read_text())["status"] == "refused"
    x = np.ones((2, 3, 32, 32), dtype=np.float32)
    np.testing.assert_allclose(backbone(x), np.ones((2, 3)))  # torch's answer, not the export's
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.ml.backbone_runtime"):
        assert open_backbone(spec, _ExportsDifferently()).kind == "torch"  # not exported again
    assert "refused earlier" in caplog.text


def test_an_unwritable_cache_folder_costs_speed_not_the_job(toy_set, tmp_path):
    samples, _ = toy_set
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folders should be")
    how = prepare_pass("efficientnet_lite0", PREP, FeatureSetup(dataset_dir=blocked / "features",
                                                               backbone_dir=blocked / "backbones", device="cpu"))
    assert how.backbone.kind == "torch"
    files = ImageFiles([s.path for s in samples[:4]], ids=[1, 2, 3, 4])
    got = compute_features(files, how)
    assert got.ok == [0, 1, 2, 3] and got.stats.computed == 4


def test_gpu_feature_batches_run_at_a_few_padded_shapes(toy_set):
    """On a GPU a pass's short last batch is padded (cuDNN prepares plans per shape, seconds each): the
    network sees 16 or 32 rows, and the answers are those of the unpadded batch."""
    from app.ml.architectures import build_backbone
    from app.ml.backbone_runtime import _torch_runner

    module, _ = build_backbone("efficientnet_lite0", pretrained=True)
    module.eval()
    shapes = []
    module.register_forward_hook(lambda mod, args, out: shapes.append(len(args[0])))
    plain, padded = _torch_runner(module, torch.device("cpu")), _torch_runner(module, torch.device("cpu"), pad=True)
    x = np.random.default_rng(0).random((5, 3, SIZE, SIZE), dtype=np.float32)
    np.testing.assert_allclose(padded(x), plain(x), rtol=1e-4, atol=1e-5)
    padded(np.concatenate([x] * 4))  # 20 rows
    assert shapes == [16, 5, 32]  # padded, plain, then padded again
