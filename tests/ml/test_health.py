"""Dataset health, pure functions: synthetic embedding arrays in, findings out."""
from __future__ import annotations

import numpy as np
from PIL import Image

from app.ml import health


def clusters(per_class: int = 12, classes: int = 3, dim: int = 32, spread: float = 0.6, seed: int = 0):
    """Embeddings around one random centre per class, far from each other; labels in class order."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, dim))
    x = np.concatenate([c + rng.normal(0, spread, (per_class, dim)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(classes), per_class), centres


def test_near_duplicates_found_and_joined_into_groups():
    x, _, _ = clusters()
    x[5] = x[30] * 1.01 + 0.001          # a pair: almost the same vector, scaled (cosine ignores scale)
    x[7] = x[8] + 0.0005                 # a triple: 7~8 and 8~9 join into one group
    x[9] = x[8] - 0.0005
    groups = health.near_duplicate_groups(x, threshold=0.99)
    assert sorted(g["members"] for g in groups) == [[5, 30], [7, 8, 9]]
    assert all(g["similarity"] >= 0.99 for g in groups)
    assert health.near_duplicate_groups(x[:4], threshold=0.99) == []


def test_similar_pairs_across_two_sets_and_chunking(monkeypatch):
    monkeypatch.setattr(health, "CHUNK", 3)  # several chunks must give the same answer
    a, _, _ = clusters(per_class=4)
    b = np.stack([a[10] + 1e-4, -a[0]])
    assert [(i, j) for i, j, _ in health.similar_pairs(b, a, threshold=0.999)] == [(0, 10)]
    within = health.similar_pairs(np.concatenate([a, a[:1]]), threshold=0.999)
    assert [(i, j) for i, j, _ in within] == [(0, 12)]


def test_out_of_fold_predictions_find_the_planted_mislabel():
    x, labels, centres = clusters()
    labels = labels.copy()
    labels[3] = 2                         # an image of class 0, labelled as class 2
    probs = health.out_of_fold_probs(x, labels, num_classes=3)
    assert probs.shape == (36, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    others = np.delete(np.arange(36), 3)
    assert (probs[others].argmax(1) == labels[others]).mean() > 0.9   # never-seen images are predicted well
    issues = health.likely_label_errors(probs, labels)
    assert [(s.index, s.given, s.suggested) for s in issues] == [(3, 2, 0)]
    assert issues[0].confidence > 0.5 > issues[0].given_confidence


def test_label_errors_skip_tiny_classes_and_folds_are_stratified():
    labels = np.array([0] * 10 + [1] * 10 + [2] * 2)
    folds = health.stratified_folds(labels, folds=5)
    for c in (0, 1):
        assert sorted(np.bincount(folds[labels == c], minlength=5)) == [2] * 5
    probs = np.tile([0.05, 0.9, 0.05], (22, 1))
    probs[:10] = [0.9, 0.05, 0.05]
    issues = health.likely_label_errors(probs, labels)
    assert [s.index for s in issues] == []   # class 2 (2 images) is neither judged nor suggested


def test_split_leaks_by_id_by_file_and_near_duplicate():
    train = [(1, "a"), (2, "b"), (3, "c")]
    test = [(1, "a"), (9, "b"), (4, "d"), (5, "e")]
    vectors = {"a": np.array([1, 0, 0.0]), "b": np.array([0, 1, 0.0]), "c": np.array([0, 0, 1.0]),
               "d": np.array([0.01, 0, 1.0]), "e": np.array([1, 1, 1.0])}
    leaks = health.split_leaks(train, test, vectors, threshold=0.95)
    assert [(leak["test"][0], leak["train"][0], leak["how"]) for leak in leaks] == [
        (1, 1, "same image"), (9, 2, "same file"), (4, 3, "near-duplicate")]
    assert health.split_leaks(train, [(5, "e")], vectors) == []
    assert health.split_leaks(train, [(5, "e")], None) == []


def test_class_sizes_and_imbalance():
    found = health.class_size_findings({"cats": 40, "dogs": 12, "owls": 3, "empty": 0}, 10, 3)
    assert {f["class"] for f in found if f["kind"] == "small_class"} == {"owls", "empty"}
    [imbalance] = [f for f in found if f["kind"] == "imbalance"]
    assert (imbalance["largest"], imbalance["smallest"], imbalance["ratio"]) == ("cats", "owls", 13.3)
    assert health.class_size_findings({"a": 10, "b": 12}, 10, 3) == []


def test_small_and_broken_images(tmp_path):
    assert health.small_images([(64, 64), (31, 200), (32, 32), (0, 0)]) == [1, 3]
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(good)
    bad.write_bytes(good.read_bytes()[:40])
    assert health.is_decodable(str(good)) and not health.is_decodable(str(bad))
    assert not health.is_decodable(str(tmp_path / "missing.png"))
