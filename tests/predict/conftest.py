"""Fixtures for the inference tests: one real tiny model trained once per session, copied per test."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

CLASSES = ["red", "green", "blue"]
COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def color_image(name: str, seed: int = 0, size: int = 40, fmt: str = "PNG") -> bytes:
    """A noisy image of one of the three colours."""
    rng = np.random.default_rng(seed)
    base = np.array(COLORS[name], dtype=np.int16)
    pixels = np.clip(base + rng.integers(-35, 36, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(pixels, "RGB").save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="session")
def trained_artifacts(tmp_path_factory):
    """Artifacts (model.pt, model.onnx, model card...) of a small_cnn trained on red/green/blue."""
    from app.ml.data import Sample
    from app.ml.engine import TrainInputs, TrainSetup, train
    from app.ml.options import TrainOptions

    root = tmp_path_factory.mktemp("predict-model")
    samples = []
    for label, name in enumerate(CLASSES):
        for i in range(10):
            path = root / "images" / f"{name}{i}.png"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(color_image(name, seed=100 * label + i))
            samples.append(Sample(len(samples), str(path), label))
    options = TrainOptions.from_dict({"architecture": "small_cnn", "mode": "scratch", "image_size": 32,
                                      "epochs": 6, "seed": 0})
    train(TrainInputs(samples, CLASSES), options, root / "model", setup=TrainSetup(device="cpu"))
    return root / "model"


@pytest.fixture
def make_model(app, trained_artifacts):
    """Create a succeeded TrainingRun (owned via a dataset of `owner`) whose files are the trained model."""
    from app.extensions import db
    from app.models import Dataset, Label, TrainingRun
    from tests.conftest import store_run_files

    def factory(owner, name="colours", public=False, threshold=None):
        dataset = Dataset(owner_id=owner.id, name=f"{name} data")
        dataset.labels = [Label(name=c, position=i) for i, c in enumerate(CLASSES)]
        run = TrainingRun(dataset=dataset, created_by_id=owner.id, name=name, architecture="small_cnn",
                          mode="scratch", status="succeeded", classes=list(CLASSES), is_public=public,
                          threshold=threshold)
        db.session.add(run)
        db.session.flush()
        store_run_files(run, trained_artifacts)
        db.session.commit()
        return run

    return factory


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    """Each test starts with an empty per-process model cache (run ids repeat between tests)."""
    from app.serving import model_cache

    model_cache().clear()
    yield
    model_cache().clear()
