"""Evaluate a trained model on a dataset: refusals, the job's confusion matrix on a constructed case, what is
left out and why, access, deletion, the page's partials and the API (real SQLite/PostgreSQL, real Redis,
real torch on a tiny model trained once per session)."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from app.extensions import db, get_queue
from app.models import Dataset, Evaluation, Image, Label, RunSample
from tests.conftest import flashes, login, run_jobs
from tests.predict import conftest as predict_fixtures
from tests.predict.conftest import color_image

# a real tiny model (red, green, blue) trained once per session, and succeeded runs made of its files
trained_artifacts, make_model = predict_fixtures.trained_artifacts, predict_fixtures.make_model


@pytest.fixture
def add_dataset(app):
    """add_dataset(owner, name, [(class name or None, colour, count), ...]) -> Dataset with colour images."""
    from app.filestore import image_key
    from app.storage import get_storage

    seed = [0]

    def factory(owner, name, rows):
        dataset = Dataset(owner_id=owner.id, name=name)
        db.session.add(dataset)
        db.session.flush()
        labels = {}
        for class_name, colour, count in rows:
            if class_name is not None and class_name not in labels:
                labels[class_name] = Label(dataset_id=dataset.id, name=class_name, position=len(labels))
                db.session.add(labels[class_name])
                db.session.flush()
            for _ in range(count):
                seed[0] += 1
                data = color_image(colour, seed=5000 + seed[0])
                sha = hashlib.sha256(data).hexdigest()
                get_storage().write(image_key(sha), data)
                db.session.add(Image(dataset_id=dataset.id, sha256=sha, filename=f"{seed[0]}.png", width=40,
                                     height=40, size_bytes=len(data), format="PNG",
                                     label_id=labels[class_name].id if class_name else None))
        db.session.commit()
        return dataset

    return factory


def _evaluations() -> list[Evaluation]:
    db.session.expire_all()
    return list(db.session.scalars(select(Evaluation).order_by(Evaluation.id)))


def _start(client, run_id: int, dataset_id: int):
    return client.post(f"/models/{run_id}/evaluations", data={"dataset_id": str(dataset_id)})


# Model classes: red, green, blue. "RED" and "Blue" match by name; one red picture is labelled Blue (a mistake the
# model must make); purple is a class the model does not know; one image has no class.
FRESH = [("RED", "red", 3), ("Blue", "blue", 2), ("Blue", "red", 1), ("purple", "green", 2), (None, "blue", 1)]


def test_a_dataset_with_no_matching_class_is_refused_and_nothing_is_queued(app, logged_in, make_model, add_dataset):
    run = make_model(logged_in.user)
    other = add_dataset(logged_in.user, "Fruit", [("apple", "red", 2), ("pear", "green", 2)])
    response = _start(logged_in, run.id, other.id)
    assert response.status_code == 422
    assert any("None of the classes of “Fruit”" in text for text in flashes(response.data))
    assert 'id="evaluate-form"' in response.get_data(as_text=True)  # the model's page, the form still there
    assert _evaluations() == [] and get_queue().count == 0


def test_the_job_computes_the_confusion_matrix_and_counts_what_it_left_out(app, logged_in, make_model, add_dataset):
    run = make_model(logged_in.user)
    fresh = add_dataset(logged_in.user, "Fresh photos", FRESH)
    response = _start(logged_in, run.id, fresh.id)
    evaluation = _evaluations()[0]
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/models/{run.id}/evaluations/{evaluation.id}")
    assert evaluation.status == "queued" and evaluation.counts["evaluated"] == 6
    run_jobs(app)
    evaluation = _evaluations()[0]
    assert evaluation.status == "succeeded", evaluation.error
    metrics = evaluation.metrics
    assert metrics["confusion_matrix"] == [[3, 0, 0], [0, 0, 0], [1, 0, 2]]
    assert metrics["count"] == 6 and metrics["accuracy"] == pytest.approx(5 / 6)
    low, high = metrics["accuracy_ci95"]
    assert low < 5 / 6 < high
    assert [row["support"] for row in metrics["per_class"]] == [3, 0, 3]
    assert metrics["per_class"][0]["precision"] == pytest.approx(0.75)
    assert evaluation.counts == {"evaluated": 6, "unlabeled": 1, "unknown_class": 2, "learned": 0, "unreadable": 0,
                                 "unknown_classes": ["purple"], "accuracy": pytest.approx(5 / 6)}
    mislabelled = db.session.scalars(select(Image.id).where(Image.dataset_id == fresh.id)).all()[5]
    assert [(m["image_id"], m["true"], m["predicted"]) for m in evaluation.misclassified] == [
        (mislabelled, "blue", "red")]
    assert evaluation.progress == {"done": 6, "total": 6} and evaluation.finished_at is not None


def test_images_the_model_was_trained_on_are_left_out(app, logged_in, make_model, add_dataset):
    run = make_model(logged_in.user)
    own = add_dataset(logged_in.user, "Own", [("red", "red", 2), ("blue", "blue", 2)])
    images = db.session.scalars(select(Image).where(Image.dataset_id == own.id).order_by(Image.id)).all()
    for position, (image, part) in enumerate(zip(images, ("train", "val", "test"))):
        db.session.add(RunSample(run_id=run.id, position=position, image_id=image.id, class_index=0,
                                 sha256=image.sha256, part=part))
    db.session.commit()
    assert _start(logged_in, run.id, own.id).status_code == 302
    run_jobs(app)
    evaluation = _evaluations()[0]
    assert evaluation.status == "succeeded"
    assert (evaluation.counts["evaluated"], evaluation.counts["learned"]) == (2, 2)  # test images still count


def test_only_learned_images_is_refused(app, logged_in, make_model, add_dataset):
    run = make_model(logged_in.user)
    own = add_dataset(logged_in.user, "Own", [("red", "red", 1)])
    image = db.session.scalars(select(Image).where(Image.dataset_id == own.id)).one()
    db.session.add(RunSample(run_id=run.id, position=0, image_id=image.id, class_index=0, sha256=image.sha256,
                             part="train"))
    db.session.commit()
    response = _start(logged_in, run.id, own.id)
    assert response.status_code == 422 and any("used to train it" in t for t in flashes(response.data))
    assert _evaluations() == []


def test_access_stranger_and_viewer_of_the_model_only_get_404(app, client, logged_in, make_user, make_model,
                                                              add_dataset):
    from app.blueprints.datasets.sharing import share_dataset

    run = make_model(logged_in.user)
    fresh = add_dataset(logged_in.user, "Fresh photos", FRESH)
    _start(logged_in, run.id, fresh.id)
    evaluation = _evaluations()[0]
    make_user("vic")
    share_dataset(db.session.get(Dataset, run.dataset_id), "vic", "viewer")  # the model's dataset, not "Fresh"
    make_user("eve")
    url = f"/models/{run.id}/evaluations/{evaluation.id}"
    for name, status in (("eve", 404), ("vic", 404)):
        other = app.test_client()
        login(other, name)
        assert other.get(url).status_code == status, name
        assert _start(other, run.id, fresh.id).status_code == 404, name  # a dataset they cannot see
        assert other.post(url + "/cancel").status_code == 404, name
        assert f"evaluations/{evaluation.id}" not in other.get(f"/models/{run.id}").get_data(as_text=True)
    share_dataset(fresh, "vic", "viewer")
    vic = app.test_client()
    login(vic, "vic")
    assert vic.get(url).status_code == 200
    assert vic.post(url + "/cancel").status_code == 403  # a viewer who did not start it


def test_deleting_the_model_or_the_dataset_removes_its_evaluations(app, logged_in, make_model, add_dataset):
    from app.blueprints.datasets.deletion import purge_dataset
    from app.blueprints.training.deletion import purge_run

    run, second = make_model(logged_in.user), make_model(logged_in.user, name="second")
    fresh = add_dataset(logged_in.user, "Fresh photos", FRESH)
    for model in (run, second):
        assert _start(logged_in, model.id, fresh.id).status_code == 302
    assert logged_in.post(f"/models/{run.id}/delete").status_code == 302  # no undo window in tests: purged
    assert purge_run(run.id) is False  # already gone
    assert [e.run_id for e in _evaluations()] == [second.id]
    fresh.deleting = True
    db.session.commit()
    purge_dataset(fresh.id)
    assert _evaluations() == []


def test_progress_then_results_partials(app, logged_in, make_model, add_dataset):
    run = make_model(logged_in.user)
    fresh = add_dataset(logged_in.user, "Fresh photos", FRESH)
    _start(logged_in, run.id, fresh.id)
    evaluation = _evaluations()[0]
    url = f"/models/{run.id}/evaluations/{evaluation.id}"
    live = logged_in.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in live  # the partial alone
    assert 'hx-trigger="every 1s"' in live and 'role="progressbar"' in live and "badge-queued" in live
    assert "1 image has no class" in live and "2 images are in classes this model does not know (“purple”)" in live
    run_jobs(app)
    mistake = _evaluations()[0].misclassified[0]["image_id"]  # (also: the pages' session sees the job's commit)
    done = logged_in.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "every 1s" not in done and "badge-succeeded" in done
    assert "Correct on <strong>5 of 6</strong>" in done and 'class="confusion"' in done
    assert f'href="/datasets/{fresh.id}/images/{mistake}/file"' in done
    assert f'src="/datasets/{fresh.id}/images/{mistake}/thumb"' in done
    page = logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    assert f'href="{url}"' in page and "83.3%" in page  # the model page lists it with its accuracy


def test_a_queued_evaluation_can_be_cancelled(app, logged_in, make_model, add_dataset):
    run = make_model(logged_in.user)
    fresh = add_dataset(logged_in.user, "Fresh photos", FRESH)
    _start(logged_in, run.id, fresh.id)
    evaluation = _evaluations()[0]
    response = logged_in.post(f"/models/{run.id}/evaluations/{evaluation.id}/cancel", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "badge-cancelled" in response.get_data(as_text=True)
    assert get_queue().count == 0 and _evaluations()[0].status == "cancelled"


def test_an_evaluation_ended_without_its_job_tells_the_webhooks(app, logged_in, make_model, add_dataset):
    """Cancelled while queued (its job never runs, so never notifies): the webhooks hear of it all the same."""
    from app.blueprints.webhooks.services import create_webhook
    from app.jobs import WEBHOOK_QUEUE

    create_webhook(logged_in.user, "http://127.0.0.1:9/hook", ["evaluation.finished"])
    run = make_model(logged_in.user)
    _start(logged_in, run.id, add_dataset(logged_in.user, "Fresh photos", FRESH).id)
    evaluation = _evaluations()[0]
    assert get_queue(WEBHOOK_QUEUE).count == 0
    logged_in.post(f"/models/{run.id}/evaluations/{evaluation.id}/cancel")
    [job] = get_queue(WEBHOOK_QUEUE).jobs
    assert job.args[:2] == ("evaluation.finished", evaluation.id)
    logged_in.post(f"/models/{run.id}/evaluations/{evaluation.id}/cancel")  # already ended: not told twice
    assert get_queue(WEBHOOK_QUEUE).count == 1


def test_a_running_evaluation_stops_when_cancelled(app, logged_in, make_model, add_dataset):
    from app.blueprints.training.evaluation_job import Progress, Stopped

    run = make_model(logged_in.user)
    _start(logged_in, run.id, add_dataset(logged_in.user, "Fresh photos", FRESH).id)
    evaluation = _evaluations()[0]
    progress = Progress(evaluation.id, total=6)
    progress(2)
    assert _evaluations()[0].progress == {"done": 2, "total": 6}
    progress(3)  # within the second: not even written
    assert _evaluations()[0].progress == {"done": 2, "total": 6}
    evaluation.cancel_requested = True
    db.session.commit()
    progress.last = 0.0
    with pytest.raises(Stopped):
        progress(4)


def test_api_start_and_read(app, make_user, make_model, add_dataset):
    from app.blueprints.predict.tokens import create_token
    from tests.api.conftest import Api

    user = make_user("alice")
    api = Api(app.test_client(), create_token(user.id, "tests")[1])
    run = make_model(user)
    fresh = add_dataset(user, "Fresh photos", FRESH)
    response = api.post(f"/api/v1/runs/{run.id}/evaluations", json={"dataset_id": fresh.id})
    assert response.status_code == 202, response.json
    doc = response.json
    assert doc["status"] == "queued" and doc["counts"]["unknown_classes"] == ["purple"] and doc["accuracy"] is None
    run_jobs(app)
    doc = api.get(f"/api/v1/runs/{run.id}/evaluations/{doc['id']}").json
    assert doc["status"] == "succeeded" and doc["confusion_matrix"] == [[3, 0, 0], [0, 0, 0], [1, 0, 2]]
    assert doc["accuracy"] == pytest.approx(5 / 6) and len(doc["misclassified"]) == 1
    refused = api.post(f"/api/v1/runs/{run.id}/evaluations",
                       json={"dataset_id": add_dataset(user, "Fruit", [("apple", "red", 1)]).id})
    assert refused.status_code == 422 and refused.json["code"] == "validation_error"
    assert db.session.scalar(select(func.count()).select_from(Evaluation)) == 1


def _own_dataset_learned_from_two(user, make_model, add_dataset):
    """A model whose run learned from 2 of the 5 labelled images of a dataset (train, val)."""
    run = make_model(user)
    own = add_dataset(user, "Own", [("red", "red", 3), ("blue", "blue", 2)])
    images = db.session.scalars(select(Image).where(Image.dataset_id == own.id).order_by(Image.id)).all()
    for position, part in enumerate(("train", "val")):
        db.session.add(RunSample(run_id=run.id, position=position, image_id=images[position].id, class_index=0,
                                 sha256=images[position].sha256, part=part))
    db.session.commit()
    return run, own


def test_a_queued_evaluation_shows_exact_counts_when_counting_is_cheap(app, logged_in, make_model, add_dataset):
    run, own = _own_dataset_learned_from_two(logged_in.user, make_model, add_dataset)
    assert _start(logged_in, run.id, own.id).status_code == 302
    queued = _evaluations()[0]  # 2 samples: counted in the request
    assert (queued.counts["evaluated"], queued.counts["learned"]) == (3, 2) and queued.progress["total"] == 3
    live = logged_in.get(f"/models/{run.id}/evaluations/{queued.id}", headers={"HX-Request": "true"})
    text = live.get_data(as_text=True)
    assert "3 images will be tested." in text and "Up to" not in text
    assert "2 images were used to train this model" in text
    page = logged_in.get(f"/models/{run.id}")  # the model page lists it (no accuracy yet)
    assert page.status_code == 200 and "<td>3</td>" in page.get_data(as_text=True)


def test_a_model_with_many_samples_leaves_counting_to_the_job_and_says_up_to(app, logged_in, make_model,
                                                                              add_dataset, monkeypatch):
    from app.blueprints.api.views_evaluations import evaluation_doc
    from app.blueprints.training import evaluations

    monkeypatch.setattr(evaluations, "COUNTED_AT_START", 1)  # as a run of more samples than counted at start
    run, own = _own_dataset_learned_from_two(logged_in.user, make_model, add_dataset)
    assert _start(logged_in, run.id, own.id).status_code == 302
    queued = _evaluations()[0]  # 5 images match, the run learned from 2: some are surely left, none compared
    assert "learned" not in queued.counts and queued.counts["evaluated"] == 5
    live = logged_in.get(f"/models/{run.id}/evaluations/{queued.id}", headers={"HX-Request": "true"})
    assert "Up to 5 images will be tested" in live.get_data(as_text=True)
    assert "<td>up to 5</td>" in logged_in.get(f"/models/{run.id}").get_data(as_text=True)
    doc = evaluation_doc(queued)["counts"]
    assert doc["exact"] is False and (doc["evaluated"], doc["learned"]) == (5, 0)
    run_jobs(app)
    done = _evaluations()[0]
    assert (done.counts["evaluated"], done.counts["learned"]) == (3, 2) and done.progress == {"done": 3, "total": 3}
    assert done.metrics["count"] == 3 and evaluation_doc(done)["counts"]["exact"] is True
    assert "<td>3</td>" in logged_in.get(f"/models/{run.id}").get_data(as_text=True)


def test_a_small_dataset_is_counted_exactly_at_start_whatever_the_model_learned(app, logged_in, make_model,
                                                                                 add_dataset, monkeypatch):
    from app.blueprints.training import evaluations

    monkeypatch.setattr(evaluations, "COUNTED_AT_START", 1)
    run, own = _own_dataset_learned_from_two(logged_in.user, make_model, add_dataset)
    small = add_dataset(logged_in.user, "Small", [("red", "red", 2)])
    copy = db.session.scalars(select(Image).where(Image.dataset_id == small.id)).first()
    copy.sha256 = db.session.scalar(select(RunSample.sha256).where(RunSample.run_id == run.id,
                                                                   RunSample.position == 0))
    db.session.commit()
    assert _start(logged_in, run.id, small.id).status_code == 302
    queued = _evaluations()[0]  # 2 match, 2 learned samples: none is surely left, so they are compared
    assert (queued.counts["evaluated"], queued.counts["learned"]) == (1, 1)


def test_the_job_pages_by_key_and_drops_learned_images_by_content(app, logged_in, make_model, add_dataset,
                                                                   monkeypatch):
    from app.blueprints.training import evaluation_job
    from app.blueprints.training.evaluations import plan_for

    run = make_model(logged_in.user)
    learned_from = add_dataset(logged_in.user, "Trained on", [("red", "red", 2)])
    fresh = add_dataset(logged_in.user, "Fresh", [("red", "red", 4), ("blue", "blue", 3), (None, "blue", 1)])
    copies = db.session.scalars(select(Image).where(Image.dataset_id == learned_from.id).order_by(Image.id)).all()
    for position, image in enumerate(copies):
        db.session.add(RunSample(run_id=run.id, position=position, image_id=image.id, class_index=0,
                                 sha256=image.sha256, part="train"))
    fresh_images = db.session.scalars(select(Image).where(Image.dataset_id == fresh.id).order_by(Image.id)).all()
    fresh_images[2].sha256, fresh_images[3].sha256 = copies[0].sha256, copies[1].sha256  # same content, elsewhere
    db.session.commit()
    evaluation = Evaluation(run_id=run.id, dataset_id=fresh.id, status="running")
    db.session.add(evaluation)
    db.session.commit()
    monkeypatch.setattr(evaluation_job, "PAGE", 2)  # pages of 2 rows: one of them holds only a learned image
    plan = plan_for(run, fresh.id)
    pages = list(evaluation_job.pages(evaluation, plan))
    ids = [image_id for files, _ in pages for image_id in files.ids]
    labelled = [image for image in fresh_images if image.label_id is not None]
    assert ids == [image.id for i, image in enumerate(labelled) if i not in (2, 3)]
    assert [truth for _, truths in pages for truth in truths] == [0, 0, 2, 2, 2]
    assert [len(files.ids) for files, _ in pages] == [2, 2, 1]
    assert plan.counts["evaluated"] == len(ids) == 5 and plan.counts["learned"] == 2
