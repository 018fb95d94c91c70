"""The train form's networks: not-installed ones are shown but cannot be chosen (and say so without a
path), become selectable once installed, and are ordered by what suits the data with figures beside."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db, get_queue
from app.models import TrainingRun
from tests.conftest import login, run_jobs
from tests.weights_support import place_random_weights

NAME = "mobilenet_v3_large"


def _choice(html: str, name: str) -> str:
    start = html.index(f'value="{name}"')
    return html[html.rfind("<label", 0, start):html.index("</label>", start)]


def test_network_becomes_selectable_only_after_install(app, logged_in, make_dataset, start_run):
    dataset = make_dataset(logged_in.user)
    html = logged_in.get(f"/datasets/{dataset.id}/train").get_data(as_text=True)
    choice = _choice(html, NAME)
    assert "disabled" in choice and "Not installed on this server — an admin can add it" in choice
    assert app.config["WEIGHTS_DIR"] not in html and ".pth" not in html and "Admin → Networks" not in html
    refused = start_run(dataset.id, architecture=NAME, mode="quick", image_size="64")
    assert refused.status_code == 422
    assert "MobileNetV3-Large is not installed on this server — an admin can add it" in refused.get_data(as_text=True)
    assert get_queue().count == 0

    place_random_weights(NAME)  # as an admin's download/upload would (RANDOM weights: plumbing only)
    html = logged_in.get(f"/datasets/{dataset.id}/train").get_data(as_text=True)
    assert "disabled" not in _choice(html, NAME) and "Not installed" not in _choice(html, NAME)
    started = start_run(dataset.id, architecture=NAME, mode="quick", image_size="64", epochs="3")
    assert started.status_code == 302
    run_jobs(app)
    run = db.session.scalars(select(TrainingRun)).one()
    db.session.refresh(run)
    assert run.status == "succeeded" and run.architecture == NAME, (run.error, run.log)


def test_admins_get_a_link_to_add_a_network(app, client, make_user, make_dataset):
    admin = make_user("root", is_admin=True)
    login(client, "root")
    dataset = make_dataset(admin)
    choice = _choice(client.get(f"/datasets/{dataset.id}/train").get_data(as_text=True), "convnext_tiny")
    assert 'href="/admin/networks"' in choice


def test_networks_are_ordered_and_carry_figures(logged_in, make_dataset):
    dataset = make_dataset(logged_in.user)
    html = logged_in.get(f"/datasets/{dataset.id}/train").get_data(as_text=True)
    order = re.findall(r'name="architecture" value="(\w+)"', html)
    assert order[:3] == ["efficientnet_lite0", "small_cnn", "small_resnet"]  # usable first
    assert set(order[3:]) == {"mobilenet_v3_large", "efficientnet_b0", "resnet18", "resnet50", "convnext_tiny"}
    assert "ordered by what suits" in html and "12 images" in html
    assert "ImageNet top-1 82.5% (published)" in _choice(html, "convnext_tiny")
    lite = _choice(html, "efficientnet_lite0")
    assert re.search(r"\d+% right on the ants-vs-bees photos \(measured, Quick\)", lite)
    assert re.search(r"~\d+ images/s on a 2-core CPU, ~1 s to look at your 12 images once", lite)
    assert 'checked' in _choice(html, "efficientnet_lite0")


def _install_convnext(monkeypatch, images_per_s: float = 16.6) -> None:
    """ConvNeXt-Tiny installed (the most accurate network here), at this speed by the bench figures."""
    from app.ml import networks

    monkeypatch.setattr(networks, "measured_figures", lambda: {"machine": "test", "networks": {
        "convnext_tiny": {"images_per_s": images_per_s}, "efficientnet_lite0": {"images_per_s": 100.0}}})
    path = networks.weights_path("convnext_tiny")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")  # presence is what makes it usable for starting a run


def _preselected(client, dataset_id: int) -> str:
    html = client.get(f"/datasets/{dataset_id}/train").get_data(as_text=True)
    return re.search(r'name="architecture" value="(\w+)"[^>]*checked', html).group(1)


def test_a_post_without_a_network_gets_the_one_the_form_preselects(logged_in, make_dataset, monkeypatch):
    _install_convnext(monkeypatch, images_per_s=0.001)  # 12 images: 3 h of feature pass; 0 images: none
    dataset = make_dataset(logged_in.user)
    preselected = _preselected(logged_in, dataset.id)
    assert preselected == "efficientnet_lite0"  # for 0 images it would be convnext_tiny
    response = logged_in.post(f"/datasets/{dataset.id}/train", data={"mode": "quick"})
    assert response.status_code == 302
    assert db.session.scalars(select(TrainingRun)).one().architecture == preselected


def test_the_api_without_a_network_gets_the_one_the_form_preselects(app, logged_in, make_dataset, monkeypatch):
    from app.blueprints.predict.tokens import create_token

    _install_convnext(monkeypatch)
    dataset = make_dataset(logged_in.user)
    token = create_token(logged_in.user.id, "tests")[1]
    response = app.test_client().post(f"/api/v1/datasets/{dataset.id}/runs", json={"mode": "quick"}, csrf=False,
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.json
    assert response.json["architecture"] == _preselected(logged_in, dataset.id) == "convnext_tiny"
    document = app.test_client().get("/api/openapi.json").json
    assert "preselects" in document["components"]["schemas"]["RunIn"]["properties"]["architecture"]["description"]
