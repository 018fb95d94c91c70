"""The epoch loop does what each option's label says: Nesterov only when asked, one-cycle keeps the
momentum as set, the best epoch by the chosen validation score, early stopping says why, and a
continued run starts from the saved optimizer state with its epochs numbered on."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from app.ml import NotTrainable, TrainOptions, train
from app.ml.engine import TrainInputs, TrainSetup
from app.ml.loop import LoopSpec, make_optimizer, make_scheduler, run_epochs, val_scores
from app.ml.progress import PHASE_WEIGHTS, ProgressReporter

CPU_NO_EXPORT = TrainSetup(device="cpu", export=False)


def _groups():
    return [{"params": [nn.Parameter(torch.zeros(3))], "lr": 0.01},
            {"params": [nn.Parameter(torch.zeros(2))], "lr": 0.1}]


@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_is_nesterov_only_when_asked(nesterov):
    optimizer = make_optimizer(TrainOptions(optimizer="sgd", nesterov=nesterov, momentum=0.8), _groups())
    assert [g["nesterov"] for g in optimizer.param_groups] == [nesterov, nesterov]
    assert [g["momentum"] for g in optimizer.param_groups] == [0.8, 0.8]


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_one_cycle_keeps_the_momentum_as_set(optimizer):
    options = TrainOptions(optimizer=optimizer, momentum=0.7, schedule="onecycle", epochs=2)
    opt = make_optimizer(options, _groups())
    scheduler = make_scheduler(options, opt, steps_per_epoch=5)
    seen, rates = set(), []
    for _ in range(10):
        opt.step()
        scheduler.step()
        group = opt.param_groups[0]
        seen.add(group["momentum"] if optimizer == "sgd" else group["betas"][0])
        rates.append(group["lr"])
    assert seen == ({0.7} if optimizer == "sgd" else {0.9})
    assert max(rates) > rates[-1] and len(set(rates)) > 5  # the learning rate still cycles


def test_val_scores_by_hand():
    # true 0,0,0,1 ; predicted 0,0,1,1 -> accuracy 3/4, recalls 2/3 and 1, F1s 0.8 and 2/3
    logits = torch.tensor([[2., 0], [2, 0], [0, 2], [0, 2]])
    scores = val_scores(logits, torch.tensor([0, 0, 0, 1]), 3)  # class 2 has no images: left out
    assert scores == pytest.approx({"accuracy": 0.75, "balanced_accuracy": (2 / 3 + 1) / 2,
                                    "macro_f1": (0.8 + 2 / 3) / 2})


def _spec(model, scores, **kw):
    """A loop spec on a linear model whose validation scores follow the given list, epoch by epoch."""
    x, y = torch.randn(8, 4), torch.tensor([0, 1] * 4)
    it = iter(scores)

    def evaluate():
        acc, balanced = next(it)
        return 1.0, {"accuracy": acc, "balanced_accuracy": balanced, "macro_f1": balanced}

    return LoopSpec(model=model, param_groups=[{"params": list(model.parameters())}],
                    train_batches=lambda epoch: iter([(x, y)]), steps_per_epoch=1, evaluate_val=evaluate, **kw)


def test_best_epoch_by_the_chosen_measure_and_early_stop_says_why():
    scores = [(0.5, 0.5), (0.9, 0.4), (0.6, 0.7), (0.6, 0.6), (0.6, 0.6), (0.7, 0.5)] + [(0.5, 0.5)] * 4
    events = []
    progress = ProgressReporter(None, PHASE_WEIGHTS["images"], 10)
    progress.callback = events.append
    by_acc = run_epochs(_spec(nn.Linear(4, 2), scores), TrainOptions(epochs=10, early_stopping_patience=3),
                        torch.device("cpu"), progress)
    assert (by_acc.best_epoch, by_acc.best_val_acc, len(by_acc.history)) == (2, 0.9, 5)
    assert by_acc.stopped_early and by_acc.stop_reason.startswith("Stopped early after epoch 5 of 10")
    assert "validation accuracy had not improved for 3 epochs" in by_acc.stop_reason
    assert [e["message"] for e in events if e.get("note")] == [by_acc.stop_reason]
    by_balanced = run_epochs(_spec(nn.Linear(4, 2), scores),
                             TrainOptions(epochs=10, early_stopping_patience=3, best_metric="balanced_accuracy"),
                             torch.device("cpu"), ProgressReporter(None, PHASE_WEIGHTS["images"], 10))
    assert (by_balanced.best_epoch, by_balanced.best_score) == (3, 0.7)
    row = by_balanced.history[0]
    assert row["lr_head"] == row["lr"] and row["lr_backbone"] is None and row["val_balanced_acc"] == 0.5
    # patience running out on the last epoch is no early stop
    last = run_epochs(_spec(nn.Linear(4, 2), scores), TrainOptions(epochs=5, early_stopping_patience=3),
                      torch.device("cpu"), ProgressReporter(None, PHASE_WEIGHTS["images"], 5))
    assert not last.stopped_early and last.stop_reason is None


def _step_count(checkpoint: dict) -> int:
    return int(next(iter(checkpoint["optimizer"]["state"].values()))["step"])


def test_a_continued_run_starts_from_the_saved_optimizer_state(toy_set, tmp_path):
    samples, classes = toy_set
    options = TrainOptions(architecture="small_cnn", mode="scratch", image_size=32, epochs=3, batch_size=8,
                           early_stopping_patience=None, lr=2e-3)
    first = train(TrainInputs(samples, classes), options, tmp_path / "a", setup=CPU_NO_EXPORT)
    saved = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    steps = -(-len(first.split["train"]) // 8)
    assert saved["epoch"] == first.best_epoch and _step_count(saved) == saved["epoch"] * steps
    more = train(TrainInputs(samples, classes, split=first.split, checkpoint=tmp_path / "a" / "checkpoint.pt"),
                 options.replace(epochs=2), tmp_path / "b", setup=CPU_NO_EXPORT)
    assert [row["epoch"] for row in more.history] == [saved["epoch"] + 1, saved["epoch"] + 2]
    assert more.start_epoch == saved["epoch"] and more.best_epoch in (saved["epoch"] + 1, saved["epoch"] + 2)
    again = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    # a fresh optimizer would count only this run's steps; the continued one carries the saved count on
    assert again["epoch"] == more.best_epoch
    assert _step_count(again) == _step_count(saved) + (more.best_epoch - saved["epoch"]) * steps
    assert more.history[0]["lr_head"] == pytest.approx(2e-3)  # the schedule restarts over the new epochs
    with pytest.raises(NotTrainable, match="classes"):
        train(TrainInputs(samples, ["blue", "red"], split=first.split, checkpoint=tmp_path / "a" / "checkpoint.pt"),
              options, tmp_path / "c", setup=CPU_NO_EXPORT)
