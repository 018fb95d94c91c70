import pytest

from app.ml import NotTrainable, TrainingCancelled, TrainOptions, stratified_split, train
from app.ml.engine import TrainInputs, TrainSetup
from app.ml.progress import Hooks

NO_EXPORT = TrainSetup(export=False)
CPU_NO_EXPORT = TrainSetup(device="cpu", export=False)

TIMINGS = ("seconds", "data_wait")
PROGRESS_KEYS = {"phase", "epoch", "epochs", "step", "steps", "loss", "train_acc", "val_acc",
                 "images_per_sec", "eta_seconds", "fraction", "message"}


def _opts(mode, **kw):
    base = {"quick": dict(architecture="efficientnet_lite0", image_size=64, epochs=15),
            "feature_extraction": dict(architecture="efficientnet_lite0", image_size=64, epochs=2),
            "fine_tune": dict(architecture="efficientnet_lite0", image_size=64, epochs=3, lr=3e-3),
            "scratch": dict(architecture="small_cnn", image_size=32, epochs=4)}[mode]
    return TrainOptions(mode=mode, test_fraction=0.25, batch_size=8, **{**base, **kw})


@pytest.mark.parametrize("mode", ["quick", "feature_extraction", "fine_tune", "scratch"])
def test_each_mode_learns_a_separable_toy_set(mode, toy_set, tmp_path):
    samples, classes = toy_set
    events = []
    result = train(TrainInputs(samples, classes), _opts(mode), tmp_path, Hooks(progress=events.append), NO_EXPORT)
    assert result.test_metrics["accuracy"] > 0.75  # chance is 0.5
    assert result.best_epoch is not None and result.history[0].keys() >= {
        "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    assert (tmp_path / "checkpoint.pt").exists()
    assert PROGRESS_KEYS <= events[0].keys()
    assert [e["fraction"] for e in events] == sorted(e["fraction"] for e in events)
    assert events[-1]["fraction"] == 1.0
    phases = {e["phase"] for e in events}
    assert "training" in phases and ("embedding" in phases) == (mode == "quick")


def test_split_is_frozen_when_passed(toy_set, tmp_path):
    samples, classes = toy_set
    labels = [s.label for s in samples]
    frozen = stratified_split(labels, 0.2, 0.3, seed=42)
    result = train(TrainInputs(samples, classes, split=frozen), _opts("scratch", epochs=1, seed=7), tmp_path,
                   setup=NO_EXPORT)
    assert result.split == frozen
    assert result.split_image_ids["test"] == [samples[i].image_id for i in frozen["test"]]
    assert result.test_metrics["count"] == len(frozen["test"])


def test_cpu_run_is_reproducible(toy_set, tmp_path):
    samples, classes = toy_set
    a = train(TrainInputs(samples, classes), _opts("scratch", epochs=2), tmp_path / "a", setup=CPU_NO_EXPORT)
    b = train(TrainInputs(samples, classes), _opts("scratch", epochs=2), tmp_path / "b", setup=CPU_NO_EXPORT)
    strip = lambda h: [{k: v for k, v in row.items() if k not in TIMINGS} for row in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)


def test_quick_retrain_reuses_stored_features(toy_set, tmp_path):
    samples, classes = toy_set
    setup = TrainSetup(feature_dir=tmp_path / "features", backbone_dir=tmp_path / "backbones", export=False)
    first = train(TrainInputs(samples, classes), _opts("quick"), tmp_path / "a", setup=setup)
    assert first.embedding_stats["computed"] == len(samples) and first.embedding_stats["reused"] == 0
    assert first.embedding_stats["runtime"] == "onnx"
    relabelled = [type(s)(s.image_id, s.path, 1 - s.label) for s in samples]
    second = train(TrainInputs(relabelled, classes), _opts("quick", head="mlp", seed=3), tmp_path / "b",
                   setup=setup)
    assert (second.embedding_stats["computed"], second.embedding_stats["reused"]) == (0, len(samples))
    assert second.test_metrics["accuracy"] > 0.75
    assert second.extra["head_choice"]["chosen"] == "mlp" and not second.extra["head_choice"]["automatic"]


def test_image_modes_report_data_wait_per_epoch(toy_set, tmp_path):
    samples, classes = toy_set
    events = []
    result = train(TrainInputs(samples, classes), _opts("feature_extraction"), tmp_path,
                   Hooks(progress=events.append), NO_EXPORT)
    assert all(0 <= row["data_wait"] <= row["seconds"] for row in result.history)
    ends = [e for e in events if (e["message"] or "").startswith("Epoch")]
    assert [e["data_wait"] for e in ends] == [row["data_wait"] for row in result.history]


def test_cancel_raises_training_cancelled(toy_set, tmp_path):
    samples, classes = toy_set
    calls = []

    def should_cancel():
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(TrainingCancelled):
        train(TrainInputs(samples, classes), _opts("scratch"), tmp_path, Hooks(should_cancel=should_cancel), NO_EXPORT)


def test_one_class_is_not_trainable(toy_set, tmp_path):
    samples, classes = toy_set
    only_red = [s for s in samples if s.label == 0]
    with pytest.raises(NotTrainable):
        train(TrainInputs(only_red, classes), _opts("scratch"), tmp_path, setup=NO_EXPORT)


def test_capped_image_cache_trains_exactly_like_an_unlimited_one(toy_set, tmp_path):
    samples, classes = toy_set
    full = train(TrainInputs(samples, classes), _opts("scratch", epochs=2), tmp_path / "a", setup=CPU_NO_EXPORT)
    # room for a few images: the rest is decoded every epoch
    capped = train(TrainInputs(samples, classes), _opts("scratch", epochs=2), tmp_path / "b",
                   setup=TrainSetup(device="cpu", export=False, image_cache_bytes=20_000))
    strip = lambda h: [{k: v for k, v in row.items() if k not in TIMINGS} for row in h]  # noqa: E731
    assert strip(capped.history) == strip(full.history)
    assert capped.test_metrics["accuracy"] == full.test_metrics["accuracy"]


def test_a_run_leaves_the_process_cudnn_setting_as_it_found_it(toy_set, tmp_path, monkeypatch):
    """cuDNN autotuning is for long training runs only; a worker that then extracts features or a web
    process that serves must not inherit it (it costs seconds per new batch shape)."""
    import torch

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    seen = []
    samples, classes = toy_set
    train(TrainInputs(samples, classes), _opts("scratch", epochs=1), tmp_path,
          Hooks(progress=lambda _: seen.append(torch.backends.cudnn.benchmark)), CPU_NO_EXPORT)
    assert seen and not any(seen)  # a short CPU run: no autotuning while it trains
    assert torch.backends.cudnn.benchmark is True
