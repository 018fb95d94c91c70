"""Evaluating an exported model page by page: one decoding pool for every page gives exactly what scoring
each page through its own pool gave (the path before it), on generated images."""
from __future__ import annotations

import numpy as np
import pytest

from app.ml.embeddings import FeatureSetup, ImageFiles
from app.ml.evaluate import BATCH, Scorer, Tally, evaluate_pages
from app.ml.inference import Predictor
from app.ml.pipeline import DecodeSpec, decoded_batches
from tests.ml.conftest import make_dataset
from tests.predict import conftest as predict_fixtures

trained_artifacts = predict_fixtures.trained_artifacts  # a small_cnn exported for red, green, blue


class Recording(Tally):
    """A Tally that also keeps every image's probabilities, to compare two paths image by image."""

    def __init__(self, classes, keep):
        super().__init__(classes, keep)
        self.probs: dict[int, np.ndarray] = {}

    def add(self, truths, probs, image_ids):
        self.probs.update(zip((int(i) for i in image_ids), probs))
        super().add(truths, probs, image_ids)


def _page_by_page(predictor: Predictor, pages, tally: Tally, on_batch) -> None:
    """The path before one pool: each page decoded by its own pool and tallied once it was scored."""
    spec = DecodeSpec(predictor.image_size, predictor.mean, predictor.std, BATCH, 2, skip_unreadable=True)
    done = 0
    for files, truths in pages:
        rows, ok, unreadable, seen = [], [], [], 0
        for batch in decoded_batches(list(files.paths), range(len(files.paths)), spec):
            unreadable += batch.unreadable
            if batch.indices:
                rows.append(predictor.probabilities(batch.images, max_batch=BATCH))
                ok += batch.indices
            seen += len(batch.indices) + len(batch.unreadable)
            on_batch(done + seen)
        tally.unreadable += len(unreadable)
        probs = np.concatenate(rows) if rows else np.zeros((0, len(predictor.classes)), dtype=np.float32)
        tally.add([truths[i] for i in ok], probs, [files.ids[i] for i in ok])
        done += len(files.paths)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Pages of 70, 1, 33 and 40 generated images (one unreadable), ids 1000.., labels given at random."""
    root = tmp_path_factory.mktemp("evaluate")
    samples, _ = make_dataset(root, 48, classes=("red", "green", "blue"))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rng = np.random.default_rng(0)
    paths = [s.path for s in samples[:100]] + [str(root / "broken.jpg")] + [s.path for s in samples[100:]]
    truths = [s.label for s in samples[:100]] + [0] + [int(rng.integers(3)) for _ in samples[100:]]
    out, start = [], 0
    for size in (70, 1, 33, 40):
        ids = list(range(1000 + start, 1000 + start + size))
        out.append((ImageFiles(paths[start:start + size], ids=ids), truths[start:start + size]))
        start += size
    return out


def test_one_pool_for_all_pages_gives_what_page_by_page_scoring_gave(trained_artifacts, pages):
    scorer = Scorer.open(trained_artifacts, FeatureSetup(threads=2, device="cpu"))
    assert scorer.method == "model"
    new, old = Recording(scorer.classes, keep=5), Recording(scorer.classes, keep=5)
    new_progress, old_progress = [], []
    evaluate_pages(scorer, iter(pages), new, new_progress.append)
    _page_by_page(Predictor.load(trained_artifacts, threads=2, device="cpu"), pages, old, old_progress.append)
    assert new.count == old.count == 143 and new.unreadable == old.unreadable == 1
    assert np.array_equal(new.matrix, old.matrix) and new.mistakes() == old.mistakes()
    assert len(new.mistakes()) == 5  # random labels on the last pages: more mistakes than kept
    assert new.probs.keys() == old.probs.keys()
    assert all(np.array_equal(new.probs[i], old.probs[i]) for i in old.probs)
    assert new.report() == old.report()
    assert new_progress == old_progress and new_progress[-1] == 144


def test_a_cancel_raised_from_progress_keeps_what_was_tallied(trained_artifacts, pages):
    scorer = Scorer.open(trained_artifacts, FeatureSetup(threads=2, device="cpu"))
    tally = Tally(scorer.classes)

    class Stop(Exception):
        """As the job's Progress raises Stopped."""

    def progress(done: int) -> None:
        if done >= 64:
            raise Stop

    with pytest.raises(Stop):
        evaluate_pages(scorer, iter(pages), tally, progress)
    assert tally.count == 64  # the first two batches of the first page
