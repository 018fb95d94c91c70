"""The preprocess.py shipped beside model.onnx reproduces POST /predict: the same probabilities (1e-5) at
128, 160 and 224 px on JPEGs big enough to be decoded at a reduced scale, one of them turned by EXIF."""
from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from app.extensions import db
from app.models import Dataset, Label, TrainingRun
from app.filestore import run_key
from app.storage import get_storage
from tests.conftest import store_run_files

CLASSES = ["a", "b", "c"]


def _export(size: int, folder):
    """A network that is one linear map of every input pixel to the logits (a conv as big as the
    image), so that its probabilities react to any pixel preprocessing gets wrong."""
    from torch import nn

    from app.ml.architectures import architecture_info
    from app.ml.data import eval_resize_size
    from app.ml.export import CardInfo, export_model

    torch.manual_seed(size)
    model = nn.Sequential(nn.Conv2d(3, len(CLASSES), size, stride=size), nn.Flatten()).eval()
    with torch.no_grad():
        model[0].weight.normal_(0, 3 / (size * 3 ** 0.5))
    export_model(model, folder, CardInfo(CLASSES, architecture_info("small_cnn"), size, eval_resize_size(size)))
    return folder


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return {size: _export(size, tmp_path_factory.mktemp(f"ref{size}")) for size in (128, 160, 224)}


def _jpegs() -> dict[str, bytes]:
    """Photo-like JPEGs over twice the largest input (so JPEG draft decoding applies), one with an
    EXIF orientation tag (6: turn 90 degrees clockwise to view)."""
    out = {}
    for name, (w, h), seed in (("wide.jpg", (1100, 700), 1), ("tall.jpg", (640, 980), 2), ("turned.jpg", (1000, 620), 3)):
        y, x = np.mgrid[0:h, 0:w]
        rng = np.random.default_rng(seed)
        pixels = np.stack([x * 255 // w, y * 255 // h, (x // 7 * 13 + y // 5 * 7) % 256], -1)
        pixels = np.clip(pixels + rng.integers(-3, 4, pixels.shape), 0, 255).astype(np.uint8)
        buf, exif = io.BytesIO(), PILImage.Exif()
        if name == "turned.jpg":
            exif[0x0112] = 6
        PILImage.fromarray(pixels).save(buf, "JPEG", quality=85, exif=exif.tobytes())
        out[name] = buf.getvalue()
    return out


def _module(path):
    spec = importlib.util.spec_from_file_location(f"shipped_preprocess_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model_run(owner, folder, size: int) -> TrainingRun:
    dataset = Dataset(owner_id=owner.id, name=f"ref {size}")
    dataset.labels = [Label(name=c, position=i) for i, c in enumerate(CLASSES)]
    run = TrainingRun(dataset=dataset, created_by_id=owner.id, name=f"ref{size}", architecture="small_cnn",
                      mode="scratch", status="succeeded", classes=list(CLASSES))
    db.session.add(run)
    db.session.flush()
    store_run_files(run, folder)
    db.session.commit()
    return run


@pytest.mark.parametrize("size", [128, 160, 224])
def test_shipped_preprocess_and_onnx_give_what_predict_gives(logged_in, exports, tmp_path, size):
    import onnxruntime as ort

    run = _model_run(logged_in.user, exports[size], size)
    if size == 160:  # a model exported before preprocess.py was shipped gets one made from its card
        get_storage().delete(run_key(run.id, "preprocess.py"))
    download = logged_in.get(f"/models/{run.id}/download/preprocess")
    assert download.status_code == 200 and download.headers["Content-Disposition"].endswith(".preprocess.py")
    shipped = tmp_path / "preprocess.py"
    shipped.write_bytes(download.data)
    download.close()
    source = shipped.read_text()
    assert "import torch" not in source and "from app" not in source  # Pillow + numpy only
    reference = _module(shipped)
    assert reference.CONFIG["size"] == size and reference.CONFIG["classes"] == CLASSES
    card_download = logged_in.get(f"/models/{run.id}/download/card")
    card = json.loads(card_download.data)
    card_download.close()
    assert card["input"]["decode_side"] == reference.CONFIG["decode_side"] and "draft" in card["input"]["preprocessing"]
    assert "EXIF" in card["input"]["preprocessing"] and card["input"]["reference"] == "preprocess.py"

    jpegs = _jpegs()
    upload = [(io.BytesIO(data), name) for name, data in jpegs.items()]
    answers = logged_in.post(f"/models/{run.id}/predict", data={"file": upload, "top_k": "3"}).json["predictions"]
    session = ort.InferenceSession(str(exports[size] / "model.onnx"), providers=["CPUExecutionProvider"])
    naive_gap = 0.0
    for answer, (name, data) in zip(answers, jpegs.items()):
        path = tmp_path / name
        path.write_bytes(data)
        with PILImage.open(path) as img:
            width = img.size[0]
        assert max(reference.load_rgb(str(path)).size) <= max(width, 1100) // 2 + 1  # decoded at 1/2 or less
        probs = reference.softmax(session.run(None, {"input": reference.preprocess(str(path))})[0])[0]
        served = {k["category_index"]: k["confidence"] for k in answer["top_k"]}
        np.testing.assert_allclose([served[i] for i in range(3)], probs, atol=1e-5, rtol=0)
        # following the old card (no draft decoding, no EXIF turn) gives other answers: the check has teeth
        with PILImage.open(path) as img:
            naive = reference.to_input(reference.centre_crop(img.convert("RGB")))
        naive_gap = max(naive_gap, float(np.abs(reference.softmax(session.run(None, {"input": naive})[0])[0]
                                               - probs).max()))
    assert naive_gap > 1e-2, naive_gap


def _offline_answers(reference, capsys, *argv) -> list[dict]:
    assert reference.main([str(a) for a in argv]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _answer(row: dict) -> tuple:
    return row["category"], row["category_index"], row["unknown"]


def test_the_downloaded_model_answers_offline_what_predict_answers_with_its_threshold(logged_in, exports, tmp_path,
                                                                                      capsys):
    """A threshold set after training: /predict answers "unknown" below it, and so does preprocess.py from
    the "Download all" zip (model_card.json beside model.onnx) and from the single downloads
    (NAME.model_card.json beside NAME.onnx); --threshold overrides the card."""
    run = _model_run(logged_in.user, exports[160], 160)
    paths = []
    for name, data in _jpegs().items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(data)

    def served() -> list[dict]:
        upload = [(io.BytesIO(p.read_bytes()), p.name) for p in paths]
        return logged_in.post(f"/models/{run.id}/predict", data={"file": upload}).json["predictions"]

    confidences = sorted(a["confidence"] for a in served())
    run.threshold = (confidences[0] + confidences[-1]) / 2  # one image above it, one below
    db.session.commit()
    answers = served()
    assert {a["unknown"] for a in answers} == {True, False} and {a["category"] for a in answers} >= {None}

    with logged_in.get(f"/models/{run.id}/download/zip") as response:
        zipped = response.data
    unpacked = tmp_path / "zip"
    with zipfile.ZipFile(io.BytesIO(zipped)) as zf:
        zf.extractall(unpacked)
    folder = next(unpacked.iterdir())
    reference = _module(folder / "preprocess.py")
    offline = _offline_answers(reference, capsys, folder / "model.onnx", *paths)
    assert [_answer(o) for o in offline] == [_answer(a) for a in answers]
    np.testing.assert_allclose([o["confidence"] for o in offline], [a["confidence"] for a in answers], atol=1e-5)

    singles = tmp_path / "singles"
    singles.mkdir()
    for kind in ("onnx", "card", "preprocess"):
        with logged_in.get(f"/models/{run.id}/download/{kind}") as response:
            name = response.headers["Content-Disposition"].split("filename=")[1]
            (singles / name).write_bytes(response.data)
    model_file = next(singles.glob("*.onnx"))
    assert model_file.name == f"ref160-model-{run.id}.onnx"
    offline = _offline_answers(_module(next(singles.glob("*.py"))), capsys, model_file, *paths)
    assert [_answer(o) for o in offline] == [_answer(a) for a in answers]

    everything = _offline_answers(reference, capsys, folder / "model.onnx", *paths, "--threshold", "0")
    assert not any(o["unknown"] for o in everything) and None not in {o["category"] for o in everything}


@pytest.mark.parametrize("probs, threshold", [
    ([0.1, 0.78, 0.12], 0.8), ([0.1, 0.8, 0.1], 0.8), ([0.05, 0.9, 0.05], 0.8), ([0.4, 0.4, 0.2], 0.5),
    ([0.4, 0.4, 0.2], 0.4), ([0.2, 0.3, 0.5], None), ([0.2, 0.3, 0.5], 0.0),
])
def test_preprocess_py_applies_the_threshold_by_predicts_rule(probs, threshold):
    """Equal to the threshold is answered, below is unknown; of equal probabilities the first class wins."""
    from app.blueprints.predict.services import prediction_entry

    reference = _module(Path(__file__).parents[2] / "app" / "ml" / "reference_preprocess.py")
    reference.CONFIG["classes"] = CLASSES
    row = np.asarray(probs, dtype=np.float32)
    served = prediction_entry("x.jpg", row, CLASSES, 3, threshold)
    offline = reference.answer(row, threshold)
    assert {k: served[k] for k in offline} == offline
