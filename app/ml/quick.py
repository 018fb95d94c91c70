"""Quick mode: features of the frozen pretrained backbone (computed once per dataset, see embeddings),
then small heads trained on them; with head 'auto' both a linear and an MLP head are fitted and the
one with the better validation accuracy is kept (a tie keeps the linear one: simpler, as good).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from .architectures import ClassifierModel, build_backbone, make_head
from .backbone_runtime import prebuilt_exports
from .compose import PrebuiltBackbone
from .embeddings import EmbeddingStats, FeatureSetup, ImageFiles, Preprocess, compute_features, prepare_pass
from .loop import SCORE_LABELS, LoopResult, LoopSpec, run_epochs, val_scores
from .options import TrainOptions
from .progress import ProgressReporter
from .runtime import one_cpu_thread
from .words import N_, line

if TYPE_CHECKING:  # the engine's run state; imported for annotations only (no import cycle)
    from .engine import _Run

log = logging.getLogger(__name__)
HEAD_NAMES = {"linear": N_("Linear head"), "mlp": N_("MLP head")}     # as a sentence starts
HEAD_IN_TEXT = {"linear": N_("linear"), "mlp": N_("MLP")}             # inside one
CHOSEN_IN_OPTIONS = N_("%(head_word)s, as chosen in the options.")
NOTHING_TO_COMPARE = N_("%(head_word)s: there are no validation images to compare the heads on.")
BEATS = N_("%(head_word)s chosen automatically: validation %(measure_word)s %(score_pct1)s beats %(other_pct1)s "
           "for %(other_word)s.")
TIES = N_("%(head_word)s chosen automatically: validation %(measure_word)s %(score_pct1)s ties with %(other_pct1)s "
          "for %(other_word)s (a tie keeps the simpler linear head).")


@dataclass
class HeadFit:
    """One fitted head: its kind, the epoch loop's result (best state loaded) and how long it took."""

    kind: str
    head: nn.Module
    loop: LoopResult
    seconds: float


@dataclass
class QuickOutcome:
    """What quick mode hands back to the engine."""

    model: ClassifierModel
    loop: LoopResult
    logits: Callable[[str], torch.Tensor]     # split part ('val', 'test') -> the chosen head's logits
    stats: EmbeddingStats
    head_choice: dict
    prebuilt: PrebuiltBackbone | None = None   # the backbone's exported copies, for a fast export


def train_quick(run: "_Run") -> QuickOutcome:
    """Features for every sample, then the head(s); the chosen head on the backbone as the model."""
    o = run.options
    module, dim = build_backbone(o.architecture, run.image_size, pretrained=True)
    run.progress.phase("embedding", line(N_("Computing image features…")))
    how = prepare_pass(o.architecture, Preprocess(run.image_size, run.arch.mean, run.arch.std),
                       _feature_setup(run), module)
    log.info("quick mode features: %s backbone on %s", how.backbone.kind, how.backbone.device)
    files = ImageFiles([s.path for s in run.samples], run.inputs.sample_keys,
                       [s.image_id for s in run.samples] if how.store is not None else None)
    seen = [0]

    def on_batch(done: int, total: int) -> None:
        run.progress.emit(done, total, images=done - seen[0])
        seen[0] = done

    features = compute_features(files, how, on_batch)
    feats = torch.from_numpy(features.vectors).to(run.device)
    labels = torch.tensor([smp.label for smp in run.samples], dtype=torch.long, device=run.device)
    chosen, choice = fit_heads(HeadData(feats, labels, run.split, len(run.classes), run.class_weights()),
                               o, run.progress, run.resume)
    log.info("quick mode head: %s", choice["reason"])
    model = ClassifierModel(how.backbone.module, chosen.head, dim)

    def logits(part: str) -> torch.Tensor:
        chosen.head.eval()
        with torch.inference_mode():
            return chosen.head(feats[run.split[part]]).float().cpu()

    prebuilt = prebuilt_exports(how.backbone) if run.setup.export else None
    return QuickOutcome(model, chosen.loop, logits, features.stats, choice, prebuilt)


def _feature_setup(run: "_Run") -> FeatureSetup:
    setup = run.setup
    return FeatureSetup(dataset_dir=setup.feature_dir, backbone_dir=setup.backbone_dir, device=run.device,
                        threads=setup.threads)


@dataclass
class HeadData:
    """What heads learn from: features [N, D] and labels [N] (same device), the split (indices into
    them), the number of classes and optional class weights for the loss."""

    feats: torch.Tensor
    labels: torch.Tensor
    split: dict[str, list[int]]
    num_classes: int
    class_weights: torch.Tensor | None = None


def fit_heads(data: HeadData, options: TrainOptions, progress: ProgressReporter,
              resume: dict | None = None) -> tuple[HeadFit, dict]:
    """Fit every head options.head_candidates names, one after the other, and choose (choose_head).
    resume: a checkpoint to continue (its one head, its optimizer state, from its epoch)."""
    kinds = options.head_candidates
    with one_cpu_thread(data.feats.device):
        fits = [_fit(data, kind, options, progress, (i, len(kinds)), resume) for i, kind in enumerate(kinds)]
    return choose_head(fits, bool(data.split["val"]), SCORE_LABELS[options.best_metric])


def _fit(data: HeadData, kind: str, options: TrainOptions, progress: ProgressReporter,
         stage: tuple[int, int], resume: dict | None = None) -> HeadFit:
    started = time.perf_counter()
    torch.manual_seed(options.seed)  # each candidate starts from the same seeded state
    head = make_head(kind, data.feats.shape[1], data.num_classes, options.dropout).to(data.feats.device)
    if resume is not None:
        head.load_state_dict({k[len("head."):]: v for k, v in resume["model"].items() if k.startswith("head.")})
    if stage[1] > 1:
        if progress.phase_name != "training":
            progress.phase("training")
        progress.start_stage(HEAD_NAMES[kind], *stage)
    loop = run_epochs(_spec(data, head, options, resume), options, data.feats.device, progress)
    return HeadFit(kind, head, loop, time.perf_counter() - started)


def choose_head(fits: list[HeadFit], has_val: bool, measure: str = "accuracy") -> tuple[HeadFit, dict]:
    """The fit with the best validation score (`measure`, the options' best_metric; the first, i.e.
    linear, on a tie or without validation images), and a record of the choice for the run page:
    chosen, reason, candidates."""
    candidates = {f.kind: {"best_val_acc": f.loop.best_val_acc, "best_score": f.loop.best_score,
                           "best_epoch": f.loop.best_epoch, "epochs_run": len(f.loop.history),
                           "seconds": round(f.seconds, 3)} for f in fits}
    chosen = fits[0]
    for fit in fits[1:]:
        if has_val and (fit.loop.best_score or 0.0) > (chosen.loop.best_score or 0.0):
            chosen = fit
    head = HEAD_NAMES[chosen.kind]
    others = [f for f in fits if f is not chosen]
    if len(fits) == 1:
        reason = line(CHOSEN_IN_OPTIONS, head_word=head)
    elif not has_val:
        reason = line(NOTHING_TO_COMPARE, head_word=head)
    else:
        other = others[0]  # quick mode fits two heads: linear and MLP
        tie = other.loop.best_score == chosen.loop.best_score
        reason = line(TIES if tie else BEATS, head_word=head, measure_word=measure, score_pct1=chosen.loop.best_score,
                      other_pct1=other.loop.best_score, other_word=HEAD_IN_TEXT[other.kind])
    return chosen, {"chosen": chosen.kind, "automatic": len(fits) > 1, "reason": reason["message"],
                    "reason_line": reason, "candidates": candidates}


def _spec(data: HeadData, head: nn.Module, options: TrainOptions, resume: dict | None = None) -> LoopSpec:
    bs = options.resolved_batch_size
    device = data.feats.device
    train_idx = torch.tensor(data.split["train"], dtype=torch.long, device=device)
    y_train = data.labels[train_idx]
    steps = max(1, -(-len(train_idx) // bs))

    def batches(epoch: int):
        gen = torch.Generator().manual_seed(options.seed * 100003 + epoch)
        order = torch.randperm(len(train_idx), generator=gen).to(device)
        for start in range(0, len(order), bs):
            sel = order[start:start + bs]
            yield data.feats[train_idx[sel]], y_train[sel]

    return LoopSpec(model=head, param_groups=[{"params": list(head.parameters())}], train_batches=batches,
                    steps_per_epoch=steps, evaluate_val=_feature_val(data, head),
                    class_weights=data.class_weights, resume=resume)


def _feature_val(data: HeadData, head: nn.Module):
    if not data.split["val"]:
        return lambda: None
    x_val, y_val = data.feats[data.split["val"]], data.labels[data.split["val"]]

    def evaluate():
        head.eval()
        with torch.inference_mode():
            logits = head(x_val).float()
            return nn.functional.cross_entropy(logits, y_val).item(), val_scores(logits, y_val, data.num_classes)

    return evaluate
