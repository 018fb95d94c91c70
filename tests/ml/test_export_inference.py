import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from app.ml import (BadImage, ExportMismatch, NotTrainable, Predictor, TrainOptions, decode_image, top_k, train)
from app.ml.engine import TrainInputs, TrainSetup
from app.ml.export import verify_exports


@pytest.fixture(scope="module")
def exported(toy_set, tmp_path_factory):
    samples, classes = toy_set
    out = tmp_path_factory.mktemp("artifacts")
    options = TrainOptions(mode="quick", architecture="efficientnet_lite0", image_size=64, epochs=15,
                           test_fraction=0.25)
    result = train(TrainInputs(samples, classes, metadata={"dataset_snapshot_id": 77}), options, out)
    return out, result


def test_artifacts_and_model_card(exported):
    out, result = exported
    for name in ("model.pt", "model.onnx", "model.torchscript.pt", "model_card.json", "checkpoint.pt"):
        assert (out / name).exists()
    card = json.loads((out / "model_card.json").read_text())
    assert card["classes"] == ["red", "blue"] and card["architecture"] == "efficientnet_lite0"
    assert card["input"]["size"] == 64 and card["input"]["mean"] == pytest.approx([127 / 255] * 3)
    assert card["metadata"]["dataset_snapshot_id"] == 77 and card["metadata"]["mode"] == "quick"
    assert {"torch", "torchvision", "onnx"} <= card["versions"].keys()
    assert card["metrics"]["test"]["accuracy"] == result.test_metrics["accuracy"]
    assert card["threshold"] is None and "unknown" in card["threshold_rule"]  # set later, at download
    assert set(result.artifacts) >= {"onnx", "torchscript", "state_dict", "card", "checkpoint"}


def test_quick_mode_exports_the_full_model(exported):
    out, _ = exported
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    assert any(k.startswith("backbone.") for k in checkpoint["model"])
    assert {"optimizer", "scheduler", "epoch", "options"} <= checkpoint.keys()


def test_onnx_and_torchscript_agree_and_predict(exported, toy_set):
    out, _ = exported
    samples, _ = toy_set
    images = [Image.open(s.path).convert("RGB") for s in samples[::3]]
    onnx = Predictor.load(out)
    assert onnx.backend == "onnx"
    ts = Predictor.load(out, backend="torch", device="cpu")
    p_onnx, p_ts = onnx.predict_proba(images, max_batch=3), ts.predict_proba(images)
    assert p_onnx.shape == (len(images), 2)
    np.testing.assert_allclose(p_onnx, p_ts, atol=1e-4)
    np.testing.assert_allclose(p_onnx.sum(1), 1.0, rtol=1e-5)
    predicted = p_onnx.argmax(1).tolist()
    assert predicted == [s.label for s in samples[::3]]
    best = top_k(p_onnx[0], 1, onnx.classes)[0]
    assert best[0] == onnx.classes[predicted[0]] and best[2] == pytest.approx(p_onnx[0].max())


def test_verify_exports_fails_loudly_on_mismatch(exported):
    out, _ = exported
    from app.ml import build_model

    other = build_model("efficientnet_lite0", 2, image_size=64).eval()
    with pytest.raises(ExportMismatch) as exc:
        verify_exports(other, out, 64)
    said = exc.value.line  # the English message for the API and logs, the line for pages (any language)
    assert said["key"] == ("The %(export)s export does not reproduce the PyTorch model "
                           "(max difference %(difference_sci)s).")
    assert said["values"]["export"] == "TorchScript" and said["message"] == exc.value.message
    assert exc.value.message == f"The TorchScript export does not reproduce the PyTorch model " \
                                f"(max difference {said['values']['difference_sci']:.2e})."


def _jpeg_bytes(size=(60, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, "JPEG")
    return buf.getvalue()


def test_decode_image_good_and_gif_first_frame():
    assert decode_image(_jpeg_bytes()).size == (60, 40)
    buf = io.BytesIO()
    frames = [Image.new("P", (8, 8), 1), Image.new("P", (8, 8), 2)]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    img = decode_image(buf.getvalue())
    assert img.mode == "RGB" and img.size == (8, 8)


def test_decode_image_applies_exif_orientation():
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    Image.new("RGB", (60, 40)).save(buf, "JPEG", exif=exif)
    assert decode_image(buf.getvalue()).size == (40, 60)


@pytest.mark.parametrize("payload, words", [
    (b"", "empty"),
    (b"hello, this is text", "not an image"),
    (_jpeg_bytes()[:200], "damaged"),
])
def test_decode_image_rejects_bad_input(payload, words):
    with pytest.raises(BadImage) as exc:
        decode_image(payload)
    assert words in str(exc.value)


def test_decode_image_rejects_too_many_pixels():
    with pytest.raises(BadImage) as exc:
        decode_image(_jpeg_bytes((300, 200)), max_pixels=50_000)
    assert "too large" in str(exc.value)


def _photo_jpeg(path, size=(900, 700)):
    """A smooth, photo-like JPEG big enough to be decoded at a reduced scale for a 64 px model."""
    y, x = np.mgrid[0:size[1], 0:size[0]]
    pixels = np.stack([(x * 255 // size[0]), (y * 255 // size[1]), ((x + y) % 256)], -1).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


def test_serving_preprocessing_is_the_training_eval_transform(exported, tmp_path):
    from app.ml import data

    out, _ = exported
    predictor = Predictor.load(out)
    path = _photo_jpeg(tmp_path / "big.jpg")
    assert predictor.decode(path.read_bytes()).size[0] < 900  # decoded at a reduced DCT scale
    trained_on = data.load_eval_crop(str(path), 64)
    served = predictor.prepare(path.read_bytes())
    assert served.dtype == np.uint8 and np.array_equal(served, trained_on.numpy())
    expected = data.normalize(trained_on[None], predictor.mean, predictor.std).numpy()
    np.testing.assert_allclose(predictor.normalize(served[None]), expected, atol=1e-6)


def test_decode_image_reduces_only_when_the_model_size_allows():
    big = _jpeg_bytes((1200, 800))
    assert decode_image(big).size == (1200, 800)
    assert decode_image(big, image_size=64).size == (150, 100)   # 1/8 keeps short side >= 64 * 1.15
    assert decode_image(big, image_size=224).size == (600, 400)  # 1/4 would leave it under 258
    assert decode_image(big, image_size=512).size == (1200, 800)


def test_quick_mode_export_joins_the_cached_backbone_files(toy_set, tmp_path):
    """With a backbone cache, a quick model's TorchScript and ONNX are its head joined to the backbone
    exported once; they must predict exactly what the trained PyTorch model predicts."""
    import onnx

    from app.ml import build_model
    from app.ml.engine import TrainSetup

    samples, classes = toy_set
    options = TrainOptions(mode="quick", architecture="efficientnet_lite0", image_size=64, epochs=5,
                           test_fraction=0.25, head="mlp")
    setup = TrainSetup(device="cpu", backbone_dir=tmp_path / "backbones")
    train(TrainInputs(samples, classes), options, tmp_path / "run", setup=setup)
    out = tmp_path / "run"
    graph = onnx.load(str(out / "model.onnx")).graph
    assert any(init.name.startswith("classifier_head.") for init in graph.initializer)  # joined, not traced
    assert list((tmp_path / "backbones").glob("*.torchscript.pt"))
    card = json.loads((out / "model_card.json").read_text())
    assert card["metadata"]["head"] == "mlp" and card["export_check"]["onnx"] < 1e-4
    model = build_model("efficientnet_lite0", 2, pretrained=False, image_size=64, head="mlp")
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    images = [Image.open(s.path).convert("RGB") for s in samples[::4]]
    onnx_predictor = Predictor.load(out)
    x = torch.from_numpy(onnx_predictor.preprocess(images))
    with torch.no_grad():
        expected = model.eval()(x).softmax(1).numpy()
    np.testing.assert_allclose(onnx_predictor.predict_proba(images), expected, atol=1e-4)
    ts = Predictor.load(out, backend="torch", device="cpu")
    np.testing.assert_allclose(ts.predict_proba(images), expected, atol=1e-4)


def test_quick_mode_continues_its_chosen_head_from_the_checkpoint(exported, toy_set, tmp_path):
    """Train more in quick mode: the chosen head and its optimizer state carry on; epochs numbered on."""
    out, result = exported
    samples, classes = toy_set
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    chosen = result.extra["head_choice"]["chosen"]
    options = TrainOptions.from_dict({**result.options, "epochs": 3, "head": chosen})
    more = train(TrainInputs(samples, classes, split=result.split, checkpoint=out / "checkpoint.pt"), options,
                 tmp_path, setup=TrainSetup(export=False))
    assert [row["epoch"] for row in more.history] == [saved["epoch"] + 1, saved["epoch"] + 2, saved["epoch"] + 3]
    again = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    step = lambda c: int(next(iter(c["optimizer"]["state"].values()))["step"])  # noqa: E731
    steps = -(-len(result.split["train"]) // options.resolved_batch_size)
    assert step(again) == step(saved) + (again["epoch"] - saved["epoch"]) * steps
    assert more.extra["head_choice"]["chosen"] == chosen and more.test_metrics["accuracy"] > 0.75
    with pytest.raises(NotTrainable, match="head"):  # the other head cannot continue this checkpoint
        train(TrainInputs(samples, classes, split=result.split, checkpoint=out / "checkpoint.pt"),
              options.replace(head="mlp" if chosen == "linear" else "linear"), tmp_path, setup=TrainSetup(export=False))


def test_decoding_on_several_threads_leaves_the_warning_filters_as_they_were():
    """warnings.catch_warnings() is process-wide: threads that each set and restore the filters around a
    decode restore them out of order and leave one thread's filter installed."""
    import threading
    import warnings

    from app.ml.inference import open_image

    blobs = []
    for i in range(8):
        buf = io.BytesIO()
        Image.new("RGB", (300 + i, 200), (i * 30, 80, 160)).save(buf, "JPEG")
        blobs.append(buf.getvalue())
    before = list(warnings.filters)

    def work():
        for _ in range(60):
            for blob in blobs:
                open_image(blob, image_size=64)
                decode_image(blob, image_size=64)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert warnings.filters == before
