"""The per-dataset feature store: rows by image id and content, appends, deletions, compaction."""
from __future__ import annotations

import hashlib
import multiprocessing

import numpy as np
import torch
from PIL import Image

from app.ml import feature_layout, feature_store
from app.ml.backbone_runtime import Backbone
from app.ml.embeddings import FeaturePass, ImageFiles, Preprocess, compute_features
from app.ml.feature_store import FeatureStore, content_tag
from tests.ml.store_appender import append_many


def _mean_colour_backbone() -> Backbone:
    """A tiny real 'backbone': the mean of each channel of the (normalised) crop."""
    return Backbone("torch", torch.nn.Identity(), 3, lambda batch: batch.mean(axis=(2, 3)), torch.device("cpu"))


def _image(path, colour) -> str:
    Image.new("RGB", (24, 20), colour).save(path)
    return str(path)


def _sha(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _files(images: dict) -> ImageFiles:
    ids = sorted(images)
    return ImageFiles([images[i] for i in ids], [_sha(images[i]) for i in ids], ids)


def test_store_survives_added_and_deleted_images_without_stale_rows(tmp_path):
    dataset = tmp_path / "features" / "7"
    store = FeatureStore(feature_layout.store_dir(dataset, "net", 16, "abc-fp32"), dim=3)
    how = FeaturePass(_mean_colour_backbone(), Preprocess(16, (0.5,) * 3, (0.25,) * 3), store, threads=2)
    colours = {1: (250, 0, 0), 2: (0, 250, 0), 3: (0, 0, 250), 4: (120, 120, 120)}
    images = {i: _image(tmp_path / f"{i}.png", c) for i, c in colours.items()}
    first = compute_features(_files(images), how)
    assert (first.stats.computed, first.stats.reused) == (4, 0)

    images[5] = _image(tmp_path / "5.png", (10, 200, 90))          # images arrive
    grown = compute_features(_files(images), how)
    assert (grown.stats.computed, grown.stats.reused) == (1, 4)
    np.testing.assert_array_equal(grown.vectors[:4], first.vectors)

    feature_layout.forget_images(dataset, [2])                     # image 2 deleted (the web hook)
    del images[2]
    images[3] = _image(tmp_path / "3b.png", (250, 250, 0))          # id 3 now names other pixels
    after = compute_features(_files(images), how)
    assert (after.stats.computed, after.stats.reused) == (1, 3)     # only id 3 is computed again
    fresh = compute_features(_files({3: images[3]}), FeaturePass(how.backbone, how.prep, None))
    np.testing.assert_array_equal(after.vectors[1], fresh.vectors[0])  # the new pixels, not the old row

    store.compact()
    stored = np.concatenate([np.load(p)["id"] for p in store.segments()])
    assert 2 not in stored.tolist() and sorted(set(stored.tolist())) == [1, 3, 4, 5]
    assert not list(store.root.glob("forget-*"))
    found, _ = store.lookup([2], [content_tag(_sha(str(tmp_path / "2.png")))])
    assert not found.any()                                          # deleted: never served again

    feature_layout.remove_dataset_features(dataset)                # the dataset is deleted
    assert not dataset.exists()
    assert compute_features(_files(images), how).stats.computed == 4


def test_many_appends_are_merged_and_every_row_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(feature_store, "MAX_SEGMENTS", 3)
    store = FeatureStore(tmp_path / "s", dim=2)
    for k in range(10):
        store.append([k], [k * 7], np.array([[k, -k]], dtype=np.float32))
    assert len(store.segments()) <= 3
    found, vectors = store.lookup(list(range(10)), [k * 7 for k in range(10)])
    assert found.all() and vectors[:, 0].tolist() == list(range(10))


def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=append_many, args=(str(tmp_path / "s"), start)) for start in (0, 100)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    ids = list(range(30)) + list(range(100, 130))
    found, vectors = FeatureStore(tmp_path / "s", dim=4).lookup(ids, ids)
    assert found.all() and vectors[:, 0].tolist() == [float(i) for i in ids]


def test_lookup_takes_the_newest_row_of_the_same_content_and_sees_later_appends(tmp_path, monkeypatch):
    store = FeatureStore(tmp_path / "store", dim=2)
    store.append([1, 2, 3], [10, 20, 30], np.array([[1, 1], [2, 2], [3, 3]], dtype=np.float32))
    found, vectors = store.lookup([3, 1, 9, 2], [30, 10, 90, 21])  # 9: never stored; 2: other content
    assert found.tolist() == [True, True, False, False]
    assert vectors.tolist() == [[3, 3], [1, 1], [0, 0], [0, 0]]
    # the same object again (as a pass looking up page after page): rows appended since are seen
    store.append([2, 3], [21, 30], np.array([[5, 5], [6, 6]], dtype=np.float32))
    store.append([3], [31], np.array([[7, 7]], dtype=np.float32))
    found, vectors = store.lookup([2, 3, 3, 2], [21, 30, 31, 20])
    assert found.all() and vectors.tolist() == [[5, 5], [6, 6], [7, 7], [2, 2]]  # (3, 30): the newer of two rows
    monkeypatch.setattr(feature_store, "MAX_SEGMENTS", 1)
    assert store.compact() is True and len(store.segments()) == 1  # merged: one row per id, the newest
    found, vectors = store.lookup([1, 2, 3, 3], [10, 21, 31, 30])
    assert found.tolist() == [True, True, True, False] and vectors[:3].tolist() == [[1, 1], [5, 5], [7, 7]]
    assert FeatureStore(tmp_path / "empty", dim=2).lookup([1], [10])[0].tolist() == [False]
