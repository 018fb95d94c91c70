"""Dataset health, the pure part: arrays in, findings out (no Flask, no database).

- near_duplicate_groups: images whose backbone embeddings are almost the same picture;
- out_of_fold_probs + likely_label_errors: a tiny linear model trained k times, each time without
  one fold, predicts every image it never saw; a confident disagreement with the given label
  (confident-learning style per-class thresholds) marks a likely label error;
- split_leaks: images of a run's test split that also sit (exactly or nearly) in its training split;
- class_size_findings / small_images / is_decodable: classes too small or imbalanced, broken or tiny files.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from .architectures import DEFAULT_ARCHITECTURE, get_architecture
from .embeddings import Features, FeatureSetup, ImageFiles, Preprocess, compute_features, prepare_pass
from .files import local_file
from .pillow_open import open_header
from .runtime import one_cpu_thread

log = logging.getLogger(__name__)

DUPLICATE_SIMILARITY = 0.95
MIN_SIDE = 32
FOLDS = 5
CHUNK = 1024  # rows of the similarity matrix held at once: memory stays O(CHUNK * N)


def _unit(vectors) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
    return torch.nn.functional.normalize(x, dim=1)


def similar_pairs(a, b=None, threshold: float = DUPLICATE_SIMILARITY) -> list[tuple[int, int, float]]:
    """(i, j, cosine) for rows of a and b with cosine >= threshold; with b None, pairs i < j within a."""
    ua = _unit(a)
    ub = ua if b is None else _unit(b)
    pairs = []
    if len(ua) == 0 or len(ub) == 0:
        return pairs
    for start in range(0, len(ua), CHUNK):
        sims = ua[start:start + CHUNK] @ ub.T
        if b is None:  # keep j > i only
            rows = torch.arange(start, start + len(sims)).unsqueeze(1)
            sims = torch.where(torch.arange(len(ub)).unsqueeze(0) > rows, sims, torch.full_like(sims, -2.0))
        for i, j in torch.nonzero(sims >= threshold).tolist():
            pairs.append((start + i, j, round(float(sims[i, j]), 4)))
    return pairs


def near_duplicate_groups(embeddings, threshold: float = DUPLICATE_SIMILARITY) -> list[dict]:
    """Groups of indices that are near-duplicates of each other (linked pairs joined together).

    Each group: {"members": sorted indices, "similarity": highest cosine inside the group}, most similar first.
    """
    parent = list(range(len(embeddings)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    best: dict[int, float] = {}
    pairs = similar_pairs(embeddings, threshold=threshold)
    for i, j, _ in pairs:
        parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i, j, sim in pairs:
        r = root(i)
        best[r] = max(best.get(r, -1.0), sim)
    for i in range(len(embeddings)):
        if root(i) in best:
            groups.setdefault(root(i), []).append(i)
    found = [{"members": sorted(m), "similarity": best[r]} for r, m in groups.items()]
    return sorted(found, key=lambda g: (-g["similarity"], g["members"][0]))


# --- label errors -----------------------------------------------------------------------------

def stratified_folds(labels: Sequence[int], folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Fold number per sample; every class is spread over the folds as evenly as it can be."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + rng.integers(folds)) % folds
    return fold


def _fit_linear(x: torch.Tensor, y: torch.Tensor, num_classes: int, steps: int, seed: int) -> torch.nn.Linear:
    """Multinomial logistic regression, full batch (L-BFGS), with some L2 regularisation."""
    with torch.random.fork_rng(devices=[]):  # seeded init without disturbing the caller's RNG
        torch.manual_seed(seed)
        head = torch.nn.Linear(x.shape[1], num_classes)
    opt = torch.optim.LBFGS(head.parameters(), lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(x), y) + 1e-2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head


def out_of_fold_probs(embeddings, labels: Sequence[int], num_classes: int, folds: int = FOLDS,
                      steps: int = 100, seed: int = 0) -> np.ndarray:
    """[N, num_classes] class probabilities, each row from a linear model that never saw that image."""
    with one_cpu_thread():
        return _out_of_fold(embeddings, labels, num_classes, folds, steps, seed)


def _out_of_fold(embeddings, labels, num_classes: int, folds: int, steps: int, seed: int) -> np.ndarray:
    x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    probs = np.full((len(y), num_classes), 1.0 / max(num_classes, 1), dtype=np.float32)
    fold = torch.as_tensor(stratified_folds(y.numpy(), folds, seed))
    with torch.no_grad():
        x = torch.nn.functional.normalize(x, dim=1)
    for k in range(folds):
        held, train = fold == k, fold != k
        if not held.any() or len(torch.unique(y[train])) < 2:
            continue
        mean = x[train].mean(0)
        # one global scale, not per-dimension: standardising 1,000+ dims of few images amplifies noise
        std = x[train].std(0).mean().clamp_min(1e-6) if int(train.sum()) > 1 else torch.ones(())
        head = _fit_linear((x[train] - mean) / std, y[train], num_classes, steps, seed + k)
        with torch.no_grad():
            probs[held.numpy()] = torch.softmax(head((x[held] - mean) / std), dim=1).numpy()
    return probs


@dataclass(frozen=True)
class LabelIssue:
    """Image `index` is labelled `given` but looks like `suggested` (with probability `confidence`)."""

    index: int
    given: int
    suggested: int
    confidence: float
    given_confidence: float


def likely_label_errors(probs, labels: Sequence[int], min_class_size: int = 3,
                        min_confidence: float = 0.5) -> list[LabelIssue]:
    """Images whose out-of-fold prediction confidently disagrees with their label, surest first.

    Confident learning: class j's threshold is the average probability the model gives j on images
    labelled j. An image labelled y is suspect when some other class j reaches j's threshold and
    beats the probability of y (and min_confidence). Classes with fewer than min_class_size images
    are neither judged nor suggested: their threshold means nothing.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    num_classes = probs.shape[1] if probs.ndim == 2 else 0
    counts = np.bincount(labels, minlength=num_classes) if len(labels) else np.zeros(num_classes)
    usable = counts >= min_class_size
    thresholds = np.array([probs[labels == j, j].mean() if usable[j] else np.inf for j in range(num_classes)])
    issues = []
    for i, (row, given) in enumerate(zip(probs, labels)):
        if not usable[given]:
            continue
        passing = [j for j in range(num_classes)
                   if j != given and row[j] >= thresholds[j] and row[j] > row[given] and row[j] >= min_confidence]
        if passing:
            j = max(passing, key=lambda c: row[c])
            issues.append(LabelIssue(i, int(given), int(j), round(float(row[j]), 4), round(float(row[given]), 4)))
    return sorted(issues, key=lambda s: (s.given_confidence - s.confidence, s.index))


# --- leakage ----------------------------------------------------------------------------------

def split_leaks(train: Sequence[tuple[int, str]], test: Sequence[tuple[int, str]],
                embeddings: Mapping[str, np.ndarray] | None = None,
                threshold: float = DUPLICATE_SIMILARITY) -> list[dict]:
    """Test images that are also in training: same image id, same file (sha256), or near-duplicates.

    train/test: (image_id, sha256). embeddings: sha256 -> vector for the images that have one.
    Returns [{"test": (id, sha), "train": (id, sha), "how": "same image"|"same file"|"near-duplicate",
    "similarity": float|None}], one per leaking test image.
    """
    by_id = {image_id: (image_id, sha) for image_id, sha in train}
    by_sha = {sha: (image_id, sha) for image_id, sha in train}
    leaks, rest = [], []
    for item in test:
        image_id, sha = item
        if image_id in by_id:
            leaks.append({"test": item, "train": by_id[image_id], "how": "same image", "similarity": 1.0})
        elif sha in by_sha:
            leaks.append({"test": item, "train": by_sha[sha], "how": "same file", "similarity": 1.0})
        else:
            rest.append(item)
    if embeddings:
        near_train = [t for t in train if t[1] in embeddings]
        near_test = [t for t in rest if t[1] in embeddings]
        if near_train and near_test:
            pairs = similar_pairs([embeddings[s] for _, s in near_test], [embeddings[s] for _, s in near_train],
                                  threshold)
            seen = set()
            for i, j, sim in sorted(pairs, key=lambda p: -p[2]):
                if i not in seen:
                    seen.add(i)
                    leaks.append({"test": near_test[i], "train": near_train[j], "how": "near-duplicate",
                                  "similarity": sim})
    return leaks


# --- classes and files ------------------------------------------------------------------------

def class_size_findings(counts: Mapping[str, int], min_images: int, imbalance_ratio: float) -> list[dict]:
    """{"kind": "small_class", "class": name, "count": n} for classes under min_images (empty ones too),
    and one {"kind": "imbalance", "largest", "smallest", "ratio"} when the largest class has at least
    imbalance_ratio times the images of the smallest non-empty one."""
    found = [{"kind": "small_class", "class": name, "count": n} for name, n in counts.items() if n < min_images]
    used = {name: n for name, n in counts.items() if n > 0}
    if len(used) >= 2:
        big, small = max(used, key=used.get), min(used, key=used.get)
        ratio = used[big] / used[small]
        if ratio >= imbalance_ratio:
            found.append({"kind": "imbalance", "largest": big, "smallest": small, "ratio": round(ratio, 1),
                          "counts": [used[big], used[small]]})
    return found


def small_images(sizes: Sequence[tuple[int, int]], min_side: int = MIN_SIDE) -> list[int]:
    """Indices of (width, height) pairs whose shorter side is under min_side pixels."""
    return [i for i, (w, h) in enumerate(sizes) if min(w or 0, h or 0) < min_side]


def is_decodable(path: str) -> bool:
    """True when the file decodes fully as an image (a truncated or garbled file does not)."""
    try:  # size limits were checked at upload; here only decoding counts
        with open_header(local_file(path)) as img:
            img.load()
        return True
    except Exception:  # any decoder failure means the same thing here: the picture is unusable
        return False


def embed_images(files: ImageFiles, setup: FeatureSetup, architecture: str = DEFAULT_ARCHITECTURE,
                 image_size: int | None = None, on_batch: Callable[[int, int], None] | None = None) -> Features:
    """Pretrained-backbone vectors for the files, read from / added to the dataset's feature store (the
    one quick mode uses); files that cannot be decoded are listed in Features.unreadable, not raised."""
    info = get_architecture(architecture)
    prep = Preprocess(image_size or info.default_image_size, info.mean, info.std)
    how = dataclasses.replace(prepare_pass(architecture, prep, setup), skip_unreadable=True)
    features = compute_features(files, how, on_batch)
    log.info("health features: %s", features.stats.to_dict())
    return features
