"""Summary warnings, training samples, dataset create/edit/delete."""
from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import Dataset, DatasetShare, Image, Label
from app.filestore import image_key, thumb_key
from app.storage import get_storage
from tests.conftest import run_jobs
from tests.datasets.conftest import import_zip, make_zip, png, upload


def test_dataset_warnings_in_plain_language():
    from app.blueprints.datasets.services import dataset_warnings

    assert dataset_warnings({"ants": 50, "bees": 10}, 12) == [
        "Classes are imbalanced: “ants” has 5x more images than “bees”. "
        "Try to give every class a similar number of images.",
        "12 images are unlabeled; unlabeled images are not used for training.",
    ]
    assert ("Class “bees” has 3 images: enough to train, but 10 or more give a more reliable model."
            in dataset_warnings({"ants": 12, "bees": 3}, 0))
    two = dataset_warnings({"ants": 12, "bees": 2}, 0)  # too few to train: readiness says that, not advice
    assert len(two) == 1 and two[0].startswith("Classes are imbalanced")
    assert dataset_warnings({"ants": 20}, 0) == []  # one class: likewise
    assert dataset_warnings({"ants": 20, "bees": 15}, 0) == []


def test_one_class_with_one_image_is_not_ready_for_the_same_reasons_everywhere(client, logged_in, dataset):
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.predict.tokens import create_token

    ants = add_class(dataset.id, "ants")
    [result] = upload(logged_in, dataset.id, [("a.png", png(1))]).json["results"]
    logged_in.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": result["image_id"], "label_id": ants.id})
    reasons = ("needs at least two", "Each class needs at least 3 labeled images")
    train = logged_in.get(f"/datasets/{dataset.id}/train").get_data(as_text=True)
    assert "Not ready yet: 2 things to do first" in train and all(r in train for r in reasons)
    overview = logged_in.get(f"/datasets/{dataset.id}").get_data(as_text=True)
    assert all(r in overview for r in reasons) and "at least 10" not in overview and "10 or more" not in overview
    assert "looks ready for training" not in overview
    headers = {"Authorization": f"Bearer {create_token(logged_in.user.id, 'script')[1]}"}
    detail = client.get(f"/api/v1/datasets/{dataset.id}", headers=headers).get_json()
    assert len(detail["missing"]) == 2 and all(r in m for r, m in zip(reasons, detail["missing"]))
    assert detail["warnings"] == []
    refused = client.post(f"/api/v1/datasets/{dataset.id}/runs", json={"name": "x"}, headers=headers, csrf=False)
    assert refused.status_code == 422
    assert "needs at least two classes" in refused.json["error"] and "at least 3 are needed" in refused.json["error"]


def test_summary_page_and_labelled_samples(logged_in, dataset):
    from app.blueprints.datasets.services import image_file_path, labelled_samples

    import_zip(logged_in, dataset.id, make_zip({"bees/b.png": png(1), "ants/a.png": png(2), "u.png": png(3)}))
    page = logged_in.get(f"/datasets/{dataset.id}").data.decode()
    assert "these have fewer: “bees” (1), “ants” (1)." in page and "at least 10" not in page
    assert "1 image is unlabeled" in page and "Train a model" in page
    samples = labelled_samples(dataset.id)
    assert [name for _, _, name in samples] == ["bees", "ants"]  # class order (creation order here)
    assert all(image_file_path(sha).read_bytes()[:4] == b"\x89PNG" for _, sha, _ in samples)


def test_create_edit_and_list(logged_in):
    response = logged_in.post("/datasets/new", data={"name": "  Birds ", "description": "garden birds"})
    dataset = db.session.scalar(select(Dataset))
    assert response.headers["Location"].endswith(f"/datasets/{dataset.id}") and dataset.name == "Birds"
    assert logged_in.post("/datasets/new", data={"name": ""}).status_code == 422
    logged_in.post(f"/datasets/{dataset.id}/edit", data={"name": "Garden birds", "description": ""})
    listing = logged_in.get("/datasets").data
    assert b"Garden birds" in listing and b"0 images" in listing


def test_delete_dataset_removes_rows_and_files_not_used_elsewhere(app, logged_in, dataset, make_user):
    from app.blueprints.datasets.services import create_dataset
    from app.blueprints.datasets.sharing import share_dataset

    make_user("bob")
    shared_bytes, own_bytes = png(1), png(2)
    import_zip(logged_in, dataset.id, make_zip({"ants/a.png": shared_bytes, "ants/b.png": own_bytes}))
    other = create_dataset(logged_in.user.id, "Other")
    upload(logged_in, other.id, [("a.png", shared_bytes)])
    share_dataset(dataset, "bob", "viewer")
    shared_sha, own_sha = (db.session.scalar(select(Image.sha256).where(Image.filename == n, Image.dataset_id == dataset.id))
                           for n in ("a.png", "b.png"))
    page = logged_in.get(f"/datasets/{dataset.id}/delete")
    assert b"Yes, delete it" in page.data
    response = logged_in.post(f"/datasets/{dataset.id}/delete", follow_redirects=True)
    assert b"was deleted" in response.data
    assert b"ds-card-name\">Ants and bees<" not in response.data  # gone from the list at once, before the job ran
    assert b"ds-card-name\">Other<" in response.data
    assert logged_in.get(f"/datasets/{dataset.id}").status_code == 404
    dataset_id = dataset.id
    run_jobs(app)
    db.session.expire_all()
    assert db.session.get(Dataset, dataset_id) is None
    for model in (Image, Label, DatasetShare):
        assert db.session.scalar(select(func.count(model.id)).where(model.dataset_id == dataset_id)) == 0
    storage = get_storage()
    assert storage.exists(image_key(shared_sha)) and storage.exists(thumb_key(shared_sha))
    assert not storage.exists(image_key(own_sha)) and not storage.exists(thumb_key(own_sha))
