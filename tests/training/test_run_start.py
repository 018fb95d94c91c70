"""Starting a run: the request freezes the dataset's labelled images in one statement (no per-image work),
the training job prepares the sample list ("Preparing the image list"), and what trains is exactly what
was labelled when Start was pressed, whatever happens to the dataset right after."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import delete, func, select, update

from app.blueprints.datasets.images.undo import trash_rows
from app.blueprints.training import samples
from app.extensions import db
from app.ml.errors import TrainingCancelled
from app.models import Image, Label, RunSample, TrainingRun, run_frozen_images, utcnow
from tests.conftest import run_jobs


def _labelled(dataset_id: int) -> list[tuple[int, str, str]]:
    """(image id, class name, sha256) of the labelled images, by id."""
    return [tuple(row) for row in db.session.execute(
        select(Image.id, Label.name, Image.sha256).join(Label, Label.id == Image.label_id)
        .where(Image.dataset_id == dataset_id).order_by(Image.id))]


def _trained_on(run: TrainingRun) -> list[tuple[int, str, str]]:
    rows, _split = samples.load(run.id)
    return [(image_id, run.classes[class_index], sha) for image_id, class_index, sha in rows]


def _frozen_count(run_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(run_frozen_images)
                             .where(run_frozen_images.c.run_id == run_id))


def _only_run() -> TrainingRun:
    db.session.expire_all()
    return db.session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())).first()


def test_the_request_only_freezes_ids_and_classes(start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user, {"red": 6, "blue": 6})
    assert start_run(dataset.id).status_code == 302
    run = _only_run()
    assert _frozen_count(run.id) == 12 and db.session.scalar(select(func.count()).select_from(RunSample)) == 0
    assert run.snapshot["total"] == 12 and run.classes == ["red", "blue"]
    assert run.snapshot["counts"] == [[4, 1, 1], [4, 1, 1]]  # planned from the counts (fractions 0.2, 0.2)


def test_what_trains_is_what_was_labelled_when_start_was_pressed(app, start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user, {"red": 6, "blue": 6})
    at_start = _labelled(dataset.id)
    assert start_run(dataset.id).status_code == 302
    run = _only_run()
    red, blue = (db.session.scalar(select(Label.id).where(Label.dataset_id == dataset.id, Label.name == n))
                 for n in ("red", "blue"))
    first_red = at_start[0][0]
    # right after Start: an image added, one relabelled, one deleted (its undo still possible), one unlabelled
    db.session.add(Image(dataset_id=dataset.id, sha256=hashlib.sha256(b"new").hexdigest(), label_id=red,
                         filename="new.png", width=32, height=32, size_bytes=10, format="PNG", created_at=utcnow()))
    db.session.execute(update(Image).where(Image.id == first_red).values(label_id=blue))
    db.session.execute(update(Image).where(Image.id == at_start[1][0]).values(label_id=None))
    trash_rows(dataset.id, logged_in.user.id, [at_start[-1][0]])
    db.session.commit()
    assert _labelled(dataset.id) != at_start

    run_jobs(app)
    run = _only_run()
    assert run.status == "succeeded", (run.error, run.log)
    assert _trained_on(run) == at_start and _frozen_count(run.id) == 0
    assert run.snapshot["total"] == 12 and "label_ids" not in run.snapshot


def test_an_image_deleted_for_good_before_training_fails_the_run_saying_so(app, start_run, make_dataset, logged_in):
    dataset = make_dataset(logged_in.user, {"red": 6, "blue": 6})
    start_run(dataset.id)
    db.session.execute(delete(Image).where(Image.id == _labelled(dataset.id)[0][0]))  # no undo kept
    db.session.commit()
    run_jobs(app)
    run = _only_run()
    assert run.status == "failed" and "1 image this run was started with was deleted for good" in run.error
    assert db.session.scalar(select(func.count()).select_from(RunSample)) == 0 and _frozen_count(run.id) == 12


def test_a_cancelled_preparation_leaves_the_frozen_list_which_a_retry_trains(app, monkeypatch, start_run,
                                                                              make_dataset, logged_in):
    dataset = make_dataset(logged_in.user, {"red": 6, "blue": 6})
    at_start = _labelled(dataset.id)
    start_run(dataset.id)
    run = _only_run()
    monkeypatch.setattr(samples, "STORE_CHUNK", 5)
    asked = []
    with pytest.raises(TrainingCancelled):
        samples.prepare(run, lambda done, total: None, lambda: asked.append(1) or len(asked) > 1)
    assert db.session.scalar(select(func.count()).select_from(RunSample)) == 0 and _frozen_count(run.id) == 12
    run.status = "cancelled"
    db.session.commit()
    db.session.execute(update(Image).where(Image.dataset_id == dataset.id).values(label_id=None))
    db.session.commit()  # the dataset changed since: the retry still trains the list the run was started with
    assert logged_in.post(f"/models/{run.id}/retry").status_code == 302
    retry = _only_run()
    assert retry.id != run.id and _frozen_count(retry.id) == 12
    run_jobs(app)
    retry = _only_run()
    assert retry.status == "succeeded", (retry.error, retry.log)
    assert _trained_on(retry) == at_start
