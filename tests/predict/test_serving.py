"""Model serving: ONNX == torch, the per-process LRU cache, fallback to torch on a bad export, batching."""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app import serving
from tests.predict.conftest import CLASSES, color_image


def test_serving_needs_no_flask():
    import ast

    tree = ast.parse(Path(serving.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not [name for name in imported if name.split(".")[0] in ("flask", "flask_login", "werkzeug")]


def images():
    from app.ml.inference import decode_image

    return [decode_image(color_image(n, seed=40 + i, size=33 + 9 * i)) for i, n in enumerate(CLASSES * 2)]


def test_onnx_path_equals_torch_path(trained_artifacts):
    from app.ml.inference import Predictor

    onnx = Predictor.load(trained_artifacts, backend="onnx")
    torch_ = Predictor.load(trained_artifacts, backend="torch", device="cpu")
    assert onnx.backend == "onnx" and torch_.backend == "torch"
    batch = images()
    assert np.abs(onnx.predict_proba(batch) - torch_.predict_proba(batch)).max() < 1e-4
    served = serving.load_predictor(trained_artifacts, device="cpu")
    assert served.backend == "onnx"  # verified at load time, so ONNX serves on CPU


def test_serving_batch_path_equals_predict_proba(trained_artifacts):
    from app.ml.inference import Predictor

    predictor = Predictor.load(trained_artifacts, backend="onnx")
    uploads = [serving.Upload(f"{i}.png", color_image(n, seed=40 + i, size=33 + 9 * i))
               for i, n in enumerate(CLASSES * 2)]
    prepared, probs = serving.predict_uploads(predictor, uploads, serving.Limits(10_000_000, 10**9), max_batch=4)
    assert [p.filename for p in prepared] == [u.filename for u in uploads]
    assert np.allclose(probs, predictor.predict_proba(images()), atol=1e-6)


def test_mismatching_onnx_export_falls_back_to_torch(tmp_path, trained_artifacts, caplog):
    from app.ml.data import Sample
    from app.ml.engine import TrainInputs, TrainSetup, train
    from app.ml.options import TrainOptions

    other = tmp_path / "other"
    samples = [Sample(i, str(tmp_path / f"{i}.png"), i % 3) for i in range(9)]
    for i, sample in enumerate(samples):
        Path(sample.path).write_bytes(color_image(CLASSES[i % 3], seed=i))
    options = TrainOptions.from_dict({"architecture": "small_cnn", "mode": "scratch", "image_size": 32,
                                      "epochs": 1, "seed": 5, "val_fraction": 0, "test_fraction": 0})
    train(TrainInputs(samples, CLASSES), options, other, setup=TrainSetup(device="cpu"))
    broken = tmp_path / "broken"
    shutil.copytree(trained_artifacts, broken)
    shutil.copy(other / "model.onnx", broken / "model.onnx")  # an ONNX graph of another model
    served = serving.load_predictor(broken, device="cpu")
    assert served.backend == "torch"
    assert "serving with torch instead" in caplog.text


def test_cache_loads_once_and_forgets_on_delete(trained_artifacts):
    first = serving.get_predictor(1, trained_artifacts, cache_size=2)
    assert serving.get_predictor(1, trained_artifacts, cache_size=2) is first
    serving.forget_model(1)
    second = serving.get_predictor(1, trained_artifacts, cache_size=2)
    assert second is not first
    assert [key[0] for key in serving.model_cache().keys()] == [1]


def test_cache_reloads_a_rewritten_model_and_evicts_least_recent(tmp_path, trained_artifacts):
    folder = tmp_path / "m"
    shutil.copytree(trained_artifacts, folder)
    first = serving.get_predictor(1, folder, cache_size=2)
    card = folder / "model_card.json"
    stat = card.stat()
    os.utime(card, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # retrained: new card
    assert serving.get_predictor(1, folder, cache_size=2) is not first
    serving.get_predictor(2, trained_artifacts, cache_size=2)
    keys = serving.model_cache().keys()
    assert len(keys) == 2 and keys[-1][0] == 2 and keys[0][0] == 1  # the oldest version was evicted


def test_api_reuses_the_cached_model(logged_in, make_model):
    import io

    run = make_model(logged_in.user)
    for _ in range(2):
        data = {"file": [(io.BytesIO(color_image("red")), "r.png")]}
        assert logged_in.post(f"/models/{run.id}/predict", data=data).status_code == 200
    assert [key[0] for key in serving.model_cache().keys()] == [run.id]


class _Gated:
    """A real predictor whose forward passes are recorded and can be held back."""

    def __init__(self, predictor):
        self.predictor, self.classes = predictor, predictor.classes
        self.calls: list[int] = []
        self.entered, self.gate = threading.Event(), threading.Event()

    def probabilities(self, batch, max_batch=32):
        self.entered.set()
        self.gate.wait(timeout=30)
        self.calls.append(len(batch))
        return self.predictor.probabilities(batch, max_batch)


def _batch(predictor, n, seed=0):
    return predictor.preprocess(images()[seed:seed + n])


def test_requests_that_arrive_together_share_one_forward_pass(trained_artifacts):
    from app.ml.inference import Predictor

    predictor = Predictor.load(trained_artifacts)
    gated, queue = _Gated(predictor), serving.InferenceQueue(max_batch=4)
    results: dict[int, np.ndarray] = {}

    def request(i):
        results[i] = queue.run(gated, _batch(predictor, 1, seed=i))

    first = threading.Thread(target=request, args=(0,))
    first.start()
    assert gated.entered.wait(timeout=30)  # the first request holds the inference thread at the gate
    others = [threading.Thread(target=request, args=(i,)) for i in (1, 2, 3)]
    for t in others:
        t.start()
    deadline = time.monotonic() + 30
    while len(queue._pending) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    gated.gate.set()
    for t in [first, *others]:
        t.join(timeout=30)
    assert gated.calls == [1, 3]  # the three waiting requests ran as one batch
    for i in range(4):
        assert np.allclose(results[i], predictor.probabilities(_batch(predictor, 1, seed=i)), atol=1e-6)


def test_inference_queue_chunks_by_max_batch_and_keeps_order(trained_artifacts):
    from app.ml.inference import Predictor

    predictor = Predictor.load(trained_artifacts)
    gated = _Gated(predictor)
    gated.gate.set()
    batch = _batch(predictor, 6)
    probs = serving.InferenceQueue(max_batch=4).run(gated, batch)
    assert gated.calls == [4, 2]
    assert np.allclose(probs, predictor.probabilities(batch), atol=1e-6)


def test_a_failing_forward_pass_reaches_the_request_and_the_queue_goes_on(trained_artifacts):
    from app.ml.inference import Predictor

    class Broken:
        classes = ["a"]

        def probabilities(self, batch, max_batch=32):
            raise RuntimeError("out of memory")

    predictor = Predictor.load(trained_artifacts)
    queue = serving.InferenceQueue(max_batch=4)
    with pytest.raises(RuntimeError, match="out of memory"):
        queue.run(Broken(), _batch(predictor, 2))
    assert np.allclose(queue.run(predictor, _batch(predictor, 2)), predictor.probabilities(_batch(predictor, 2)))


def test_bf16_torch_path_is_checked_against_float32(trained_artifacts, monkeypatch):
    """The GPU serving path runs TorchScript under bfloat16 autocast; serving keeps it only when its
    probabilities stay close to float32. Exercised here with CPU autocast (same code, same check)."""
    from app.ml.inference import Predictor

    bf16 = Predictor.load(trained_artifacts, backend="torch", device="cpu", precision="bf16")
    fp32 = Predictor.load(trained_artifacts, backend="torch", device="cpu")
    assert (bf16.precision, fp32.precision) == ("bf16", "fp32")
    assert serving.agreement(bf16, fp32, images()) < serving.BF16_ATOL
    assert serving._checked_precision(bf16, trained_artifacts) is bf16
    monkeypatch.setattr(serving, "BF16_ATOL", 0.0)  # a model whose bf16 answers drift is served in float32
    kept = serving._checked_precision(bf16, trained_artifacts)
    assert kept is not bf16 and kept.precision == "fp32"


def test_identical_uploads_are_found_without_hashing():
    assert serving.first_copies([b"ab", b"cd", b"ab", b"abc", b"cd", b"", b""]) == [0, 1, 0, 3, 1, 5, 5]


def test_a_model_load_leaves_the_long_lived_heap_out_of_collections(trained_artifacts):
    import gc

    gc.unfreeze()
    serving.forget_model(7)
    serving.get_predictor(7, trained_artifacts, cache_size=2, freeze_heap=True)
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # torch, onnxruntime and the model's objects
    assert gc.get_count()[0] < 700  # the load ended with a collection: nothing left pending
    gc.unfreeze()
    serving.forget_model(8)
    serving.get_predictor(8, trained_artifacts, cache_size=2)  # the library's default: left alone
    assert gc.get_freeze_count() == 0


def test_gpu_batches_run_at_a_few_padded_shapes():
    from app.ml.inference import batch_shapes, padded_size

    assert batch_shapes(32) == [16, 32] and batch_shapes(256) == [16, 64, 256]
    assert batch_shapes(100) == [16, 64, 128] and batch_shapes(1) == [1] and batch_shapes(8) == [8]
    assert [padded_size(n, 256) for n in (1, 16, 17, 64, 65, 256)] == [16, 16, 64, 64, 256, 256]


def _as_if_on_a_gpu(predictor):
    """The predictor takes the GPU path (padding, warm-up) while its TorchScript runs on this CPU; the
    shapes its forward passes ran at are recorded."""
    import torch

    shapes, run = [], predictor._run
    predictor.device = torch.device("cuda")
    predictor._run = lambda batch: (shapes.append(len(batch)), run(batch))[1]
    return shapes


def test_padded_gpu_batches_give_the_same_answers(trained_artifacts):
    from app.ml.inference import Predictor

    plain = Predictor.load(trained_artifacts, backend="torch", device="cpu")
    padded = Predictor.load(trained_artifacts, backend="torch", device="cpu")
    shapes = _as_if_on_a_gpu(padded)
    batch = _batch(plain, 5)
    assert np.allclose(padded.probabilities(batch, 32), plain.probabilities(batch, 32), atol=1e-6)
    assert shapes == [16]
    assert padded.warm_up(32) > 0 and shapes == [16, 16, 32]
    assert plain.warm_up(32) == 0.0  # nothing to warm on a CPU


def test_the_queue_warms_each_model_up_once_in_its_own_thread(trained_artifacts):
    """cuDNN's plans are per thread: the warm-up must run where the forward passes will."""
    from app.ml.inference import Predictor

    predictor = Predictor.load(trained_artifacts, backend="torch", device="cpu")
    shapes = _as_if_on_a_gpu(predictor)
    warmed_in = []
    warm_up = predictor.warm_up
    predictor.warm_up = lambda max_batch: (warmed_in.append(threading.current_thread().name), warm_up(max_batch))[1]
    queue = serving.InferenceQueue(max_batch=64)
    for n in (3, 40):
        queue.run(predictor, np.repeat(_batch(predictor, 1), n, axis=0))
    assert warmed_in == ["inference"]
    assert shapes == [16, 64, 16, 64]  # the warm-up's two shapes, then both requests' padded batches
