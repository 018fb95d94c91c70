"""Who may do what: strangers get 404 on every dataset route, viewers cannot edit, owners share."""
from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import DatasetShare, Image, Import, utcnow
from tests.conftest import login
from tests.datasets.conftest import png, upload

# Every route of the blueprint. A new route must be added here (the test below fails otherwise)
# and is then checked for the stranger-404 rule. {d}: dataset id, {i}: image id, {l}: class id, {s}: share id,
# {m}: import id.
DATASET_ROUTES = {
    "datasets.show_dataset": ("GET", "/datasets/{d}"),
    "datasets.edit_dataset": ("POST", "/datasets/{d}/edit"),
    "datasets.delete_dataset": ("POST", "/datasets/{d}/delete"),
    "datasets.restore_dataset": ("POST", "/datasets/{d}/restore"),
    "datasets.images.export_dataset": ("GET", "/datasets/{d}/export"),
    "datasets.images.upload_images": ("POST", "/datasets/{d}/upload"),
    "datasets.images.import_labels": ("POST", "/datasets/{d}/labels/import"),
    "datasets.images.show_import": ("GET", "/datasets/{d}/imports/{m}"),
    "datasets.images.import_status": ("GET", "/datasets/{d}/imports/{m}/status"),
    "datasets.images.cancel_import": ("POST", "/datasets/{d}/imports/{m}/cancel"),
    "datasets.images.label_images": ("GET", "/datasets/{d}/label"),
    "datasets.images.label_selected": ("POST", "/datasets/{d}/images/label"),
    "datasets.images.delete_selected": ("POST", "/datasets/{d}/images/delete"),
    "datasets.images.undo_action": ("POST", "/datasets/{d}/images/undo/1"),
    "datasets.images.image_file": ("GET", "/datasets/{d}/images/{i}/file"),
    "datasets.images.image_thumb": ("GET", "/datasets/{d}/images/{i}/thumb"),
    "datasets.list_classes": ("POST", "/datasets/{d}/classes"),
    "datasets.update_class": ("POST", "/datasets/{d}/classes/{l}"),
    "datasets.delete_class": ("POST", "/datasets/{d}/classes/{l}/delete"),
    "datasets.merge_classes": ("POST", "/datasets/{d}/classes/merge"),
    "datasets.share_dataset": ("POST", "/datasets/{d}/sharing"),
    "datasets.revoke_share": ("POST", "/datasets/{d}/sharing/{s}/delete"),
    "datasets.give_dataset": ("POST", "/datasets/{d}/owner"),
    "datasets.suggestions.show_suggestions": ("GET", "/datasets/{d}/suggestions"),
    "datasets.suggestions.request_suggestions": ("POST", "/datasets/{d}/suggestions"),
    "datasets.suggestions.accept_suggestions": ("POST", "/datasets/{d}/suggestions/accept"),
    "datasets.health.show_health": ("GET", "/datasets/{d}/health"),
    "datasets.health.check_health": ("POST", "/datasets/{d}/health/check"),
    "datasets.health.fix_health": ("POST", "/datasets/{d}/health/fix"),
}
NO_DATASET_ROUTES = {"datasets.list_datasets", "datasets.new_dataset"}


def _setup_shared(client, make_user):
    """alice owns a dataset with one labelled image and shares it with 'vic' as viewer."""
    from app.blueprints.datasets.classes import add_class
    from app.blueprints.datasets.services import create_dataset
    from app.blueprints.datasets.sharing import share_dataset

    alice, vic, _ = make_user("alice"), make_user("vic"), make_user("eve")
    dataset = create_dataset(alice.id, "Private")
    label = add_class(dataset.id, "cats")
    login(client, "alice")
    [result] = upload(client, dataset.id, [("a.png", png(1))]).json["results"]
    client.post(f"/datasets/{dataset.id}/images/label", data={"image_ids": result["image_id"], "label_id": label.id})
    share = share_dataset(dataset, "vic", "viewer")
    client.post("/logout")
    imp = Import(dataset_id=dataset.id, user_id=alice.id, kind="zip", source_name="photos.zip", status="running",
                 total=10, errors=[], started_at=utcnow(), heartbeat_at=utcnow())
    db.session.add(imp)
    db.session.commit()
    return {"d": dataset.id, "i": result["image_id"], "l": label.id, "s": share.id, "m": imp.id}


def test_stranger_gets_404_on_every_dataset_route(app, client, make_user):
    ids = _setup_shared(client, make_user)
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("datasets.")}
    unlisted = endpoints - set(DATASET_ROUTES) - NO_DATASET_ROUTES
    assert not unlisted, f"add these routes to DATASET_ROUTES and check them: {unlisted}"
    for endpoint in DATASET_ROUTES:  # the listed method must be one the route answers
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        assert DATASET_ROUTES[endpoint][0] in rule.methods, endpoint
    login(client, "eve")
    for endpoint, (method, template) in DATASET_ROUTES.items():
        url = template.format(**ids)
        response = client.open(url, method=method, data={"image_ids": ids["i"], "label_id": ids["l"],
                                                          "name": "x", "username": "eve", "role": "editor"})
        assert response.status_code == 404, (endpoint, response.status_code)
        response.close()
    assert db.session.scalar(select(func.count(Image.id))) == 1  # nothing was changed
    assert db.session.get(Image, ids["i"]).label_id == ids["l"]
    assert db.session.get(Import, ids["m"]).cancel_requested is False


def test_viewer_can_see_but_not_edit(client, make_user):
    ids = _setup_shared(client, make_user)
    login(client, "vic")
    assert client.get("/datasets").data.count(b"Private") == 1
    page = client.get(f"/datasets/{ids['d']}")
    assert page.status_code == 200 and b'action="/datasets/%d/upload"' % ids["d"] not in page.data
    grid = client.get(f"/datasets/{ids['d']}/label")
    assert b'name="image_ids"' not in grid.data and b"data-unlabel" not in grid.data
    with client.get(f"/datasets/{ids['d']}/images/{ids['i']}/thumb") as thumb:
        assert thumb.status_code == 200
    refused = [
        upload(client, ids["d"], [("b.png", png(2))]),
        client.post(f"/datasets/{ids['d']}/images/label", data={"image_ids": ids["i"], "label_id": ""}),
        client.post(f"/datasets/{ids['d']}/images/delete", data={"image_ids": ids["i"]}),
        client.post(f"/datasets/{ids['d']}/classes", data={"name": "dogs"}),
        client.post(f"/datasets/{ids['d']}/classes/{ids['l']}/delete"),
        client.post(f"/datasets/{ids['d']}/sharing", data={"username": "eve", "role": "editor"}),
        client.post(f"/datasets/{ids['d']}/delete"),
        client.post(f"/datasets/{ids['d']}/imports/{ids['m']}/cancel"),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert b"You can view this dataset but not change it" in refused[1].data
    assert b"Ask its owner, alice, to make you an editor" in refused[1].data
    assert b"Only the dataset&#39;s owner, alice, can do this" in refused[5].data  # sharing: what to do, precisely
    assert b"owner access" not in refused[5].data
    status = client.get(f"/datasets/{ids['d']}/imports/{ids['m']}/status")
    assert status.status_code == 200 and status.json["status"] == "running"  # viewers see imports' progress
    assert b"photos.zip" in client.get(f"/datasets/{ids['d']}").data
    assert db.session.get(Import, ids["m"]).cancel_requested is False
    assert db.session.get(Image, ids["i"]).label_id == ids["l"]
    assert db.session.scalar(select(func.count(Image.id))) == 1


def test_a_viewer_is_told_plainly_and_sees_no_action_only_editors_can_use(client, make_user):
    ids = _setup_shared(client, make_user)
    login(client, "vic")
    page = client.get(f"/datasets/{ids['d']}").get_data(as_text=True)
    assert '<span class="badge">You can view this dataset</span>' in page and "you are" not in page
    suggest = f"/datasets/{ids['d']}/suggestions"
    assert suggest not in page and "Suggest labels with a model" not in page
    assert suggest not in client.get(f"/datasets/{ids['d']}/label").get_data(as_text=True)
    db.session.get(DatasetShare, ids["s"]).role = "editor"
    db.session.commit()
    page = client.get(f"/datasets/{ids['d']}").get_data(as_text=True)
    assert '<span class="badge">You can edit this dataset</span>' in page and suggest in page
    assert suggest in client.get(f"/datasets/{ids['d']}/label").get_data(as_text=True)


def test_editor_can_label_but_not_share(client, make_user):
    ids = _setup_shared(client, make_user)
    db.session.get(DatasetShare, ids["s"]).role = "editor"
    db.session.commit()
    login(client, "vic")
    response = client.post(f"/datasets/{ids['d']}/images/label", data={"image_ids": ids["i"], "label_id": ""})
    assert response.status_code == 302 and db.session.get(Image, ids["i"]).label_id is None
    assert client.get(f"/datasets/{ids['d']}/sharing").status_code == 403


def test_owner_shares_by_username_and_revokes(client, make_user):
    ids = _setup_shared(client, make_user)
    login(client, "alice")
    page = client.post(f"/datasets/{ids['d']}/sharing", data={"username": "EVE", "role": "editor"},
                       follow_redirects=True)
    assert b"Shared with eve as editor." in page.data
    missing = client.post(f"/datasets/{ids['d']}/sharing", data={"username": "nobody", "role": "viewer"})
    assert missing.status_code == 422 and b"There is no user called" in missing.data
    share_id = db.session.scalar(select(DatasetShare.id).where(DatasetShare.role == "editor"))
    client.post(f"/datasets/{ids['d']}/sharing/{share_id}/delete")
    client.post("/logout")
    login(client, "eve")
    assert client.get(f"/datasets/{ids['d']}").status_code == 404
