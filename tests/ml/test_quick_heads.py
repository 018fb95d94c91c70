"""Quick mode's automatic head: the MLP only when it is better on validation, the linear head otherwise."""
from __future__ import annotations

import torch

from app.ml import TrainOptions, stratified_split
from app.ml.progress import PHASE_WEIGHTS, ProgressReporter
from app.ml.quick import HeadData, fit_heads

OPTIONS = TrainOptions(mode="quick", head="auto", epochs=60, dropout=0.0, lr=1e-2, early_stopping_patience=None)


def _fit(feats: torch.Tensor, labels: torch.Tensor, val_fraction: float = 0.25, options: TrainOptions = OPTIONS):
    split = stratified_split(labels.tolist(), val_fraction, 0.0, seed=0)
    events = []
    progress = ProgressReporter(None, PHASE_WEIGHTS["quick"], options.resolved_epochs)
    progress.callback = events.append
    chosen, choice = fit_heads(HeadData(feats, labels, split, 2), options, progress)
    return chosen, choice, events


def _padded(points: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return torch.cat([points, 0.05 * torch.randn(len(points), 6, generator=gen)], dim=1)


def test_mlp_is_chosen_when_the_classes_are_not_linearly_separable():
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(400, 2, generator=gen) * 2 - 1
    labels = (points[:, 0] * points[:, 1] > 0).long()             # XOR of the two signs
    chosen, choice, events = _fit(_padded(points * 3, gen), labels)
    scores = {k: v["best_val_acc"] for k, v in choice["candidates"].items()}
    assert chosen.kind == "mlp" and choice["chosen"] == "mlp" and choice["automatic"]
    assert scores["mlp"] > 0.9 and scores["linear"] < 0.75
    assert "MLP head chosen automatically" in choice["reason"]
    fractions = [e["fraction"] for e in events]
    assert fractions == sorted(fractions)                            # one progress bar over both fits
    assert {e["stage"] for e in events} >= {"Linear head", "MLP head"}


def test_linear_is_kept_when_the_mlp_is_no_better_or_cannot_be_compared():
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(200) % 2
    points = torch.randn(200, 2, generator=gen) * 0.3 + (labels.float() * 4 - 2).unsqueeze(1)
    chosen, choice, _ = _fit(_padded(points, gen), labels)           # both reach 100 %: a tie
    assert choice["candidates"]["mlp"]["best_val_acc"] == choice["candidates"]["linear"]["best_val_acc"] == 1.0
    assert chosen.kind == "linear" and "tie keeps the simpler linear head" in choice["reason"]
    chosen, choice, _ = _fit(_padded(points, gen), labels, val_fraction=0.0)
    assert chosen.kind == "linear" and "no validation images" in choice["reason"]


def test_an_explicit_head_fits_only_that_head():
    gen = torch.Generator().manual_seed(2)
    labels = torch.arange(60) % 2
    feats = _padded(torch.randn(60, 2, generator=gen) + labels.float().unsqueeze(1) * 3, gen)
    chosen, choice, events = _fit(feats, labels, options=OPTIONS.replace(head="mlp", epochs=5))
    assert chosen.kind == "mlp" and list(choice["candidates"]) == ["mlp"] and not choice["automatic"]
    assert {e["stage"] for e in events} == {None}
