"""Pretrained weights with files in a bucket and no shared disk: the bucket's weights/ folder says what
is installed, each machine's WEIGHTS_DIR is a cache filled on first use (hash checked). "Another
machine" is this process with another, empty weights folder (networks.set_weights_dir)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.ml import networks, weights
from app.ml.errors import ArchitectureUnavailable
from tests.conftest import run_jobs, stored_keys
from tests.weights_support import folder_files, generated_weights, point_at

NAME = "mobilenet_v3_large"
ROW = f"/admin/networks/{NAME}"


@pytest.fixture(autouse=True)
def back_on_the_web_machine():
    yield
    networks.set_weights_dir(None)  # the next app names its own


@pytest.fixture
def official(monkeypatch) -> bytes:
    """The generated file, made the catalogue's official one for NAME."""
    data = generated_weights(NAME)
    point_at(monkeypatch, NAME, "http://unused.invalid", data)
    return data


@pytest.fixture
def admin(app, make_user):
    from tests.conftest import login

    make_user("root", is_admin=True)
    client = app.test_client()
    assert login(client, "root").status_code == 302
    return client


def _on_machine(folder: Path) -> Path:
    """Go on as another machine: its own weights folder (empty at first)."""
    networks.set_weights_dir(folder)
    return folder


def _upload(client, body: bytes):
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    boundary, data = encode_multipart({"file": FileStorage(io.BytesIO(body), "weights.pth")})
    return client.post(f"{ROW}/upload", data=data, content_type=f"multipart/form-data; boundary={boundary}")


def test_upload_on_the_web_is_installed_by_a_worker_elsewhere_and_used_by_a_third(app, admin, official, tmp_path):
    web = Path(app.config["WEIGHTS_DIR"])
    assert _upload(admin, official).status_code == 302
    staged = stored_keys("weights")
    assert len(staged) == 1 and staged[0].startswith("weights/.incoming/")  # waiting in the bucket
    assert folder_files(web) == []  # nothing left on the web machine's disk

    worker = _on_machine(tmp_path / "worker")
    run_jobs(app)
    file_name = networks.weights_path(NAME).name
    assert sorted(stored_keys("weights")) == [f"weights/{file_name}", f"weights/{file_name}.json"]
    assert folder_files(worker) == [file_name, f"{file_name}.json"]

    _on_machine(web)
    assert networks.architecture_info(NAME).available  # the web reads the bucket, its folder is empty
    assert folder_files(web) == [] and "uploaded by root" in admin.get(ROW).get_data(as_text=True)

    third = _on_machine(tmp_path / "third")
    networks_build()  # fetched into this machine's folder, then loaded from there
    assert (third / file_name).read_bytes() == official


def test_removed_on_one_machine_is_gone_on_every_machine(app, admin, official, tmp_path):
    weights.install_file(NAME, _brought(tmp_path, official))
    other = _on_machine(tmp_path / "other")
    assert networks.installed_file(NAME) == other / networks.weights_path(NAME).name  # fetched

    _on_machine(Path(app.config["WEIGHTS_DIR"]))
    removed = admin.post(f"{ROW}/remove", headers={"HX-Request": "true"})
    assert removed.status_code == 200 and "was removed" in removed.get_data(as_text=True)
    assert stored_keys("weights") == [] and not networks.architecture_info(NAME).installed

    _on_machine(other)
    with pytest.raises(ArchitectureUnavailable, match="not installed"):
        networks_build()


def test_a_damaged_copy_in_the_bucket_is_refused_not_loaded(app, official, tmp_path):
    from app.storage import get_storage

    weights.install_file(NAME, _brought(tmp_path, official))
    file_name = networks.weights_path(NAME).name
    get_storage().write(f"weights/{file_name}", official[:-10] + b"0123456789")  # same size, other bytes
    other = _on_machine(tmp_path / "other")
    with pytest.raises(ArchitectureUnavailable, match="The copy in the bucket is damaged"):
        networks_build()
    assert folder_files(other) == []


def test_a_failed_upload_leaves_nothing_in_the_bucket(app, admin, monkeypatch, tmp_path):
    import torch

    from tests.weights_support import tensor_file

    data = tensor_file(stray=torch.zeros(2))  # the right hash prefix, but it fits no network
    point_at(monkeypatch, NAME, "http://unused.invalid", data)
    assert _upload(admin, data).status_code == 302
    _on_machine(tmp_path / "worker")
    run_jobs(app)
    assert "does not fit MobileNetV3-Large" in admin.get(ROW).get_data(as_text=True)
    assert stored_keys("weights") == [] and folder_files(tmp_path / "worker") == []


def test_storage_migrate_puts_installed_weights_in_the_bucket(app, official, tmp_path):
    """A server that moves to a bucket keeps its installed networks: `flask storage migrate` shares them."""
    from app.ml.networks import set_weights_shelf

    set_weights_shelf(None)  # before the move: the weights folder alone
    weights.install_file(NAME, _brought(tmp_path, official))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["storage", "migrate", "--to", app.config["STORAGE_URL"] + "-moved"])
    assert result.exit_code == 0, result.output
    assert f"pretrained weights put in the bucket: {NAME}" in result.output

    from app.filestore.weights_shelf import StoreShelf
    from app.storage import build_store

    moved = StoreShelf(build_store({**app.config, "STORAGE_URL": app.config["STORAGE_URL"] + "-moved"}))
    set_weights_shelf(moved)
    _on_machine(tmp_path / "other")
    assert networks.installed_file(NAME).read_bytes() == official


def _brought(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "brought.pth"
    path.write_bytes(data)
    return path


def networks_build():
    from app.ml.architectures import build_model

    return build_model(NAME, num_classes=3, pretrained=True)


def test_first_start_with_a_bucket_puts_the_machines_own_weights_in_it_once(app, admin, official, tmp_path):
    """The Docker image seeds its weights folder: the first machine started puts those files in the bucket;
    a network an admin then removes does not come back at the next start."""
    from app.ml.networks import set_weights_shelf, weights_shelf
    from app.storage import check_storage

    shelf = weights_shelf()
    set_weights_shelf(None)
    weights.install_file(NAME, _brought(tmp_path, official))  # as the image brings it
    set_weights_shelf(shelf)
    assert not networks.architecture_info(NAME).installed  # the bucket does not have it yet
    check_storage(app)
    assert networks.architecture_info(NAME).installed
    assert admin.post(f"{ROW}/remove").status_code == 302 and not networks.architecture_info(NAME).installed
    networks.weights_path(NAME).write_bytes(official)  # the next machine's image brings it again
    check_storage(app)
    assert not networks.architecture_info(NAME).installed


def test_the_networks_page_lists_the_bucket_afresh_other_pages_trust_a_minute(app, admin, official, tmp_path):
    from app.storage import get_storage

    assert "not installed" in admin.get(ROW).get_data(as_text=True)
    file_name = networks.weights_path(NAME).name
    get_storage().put_file(f"weights/{file_name}", _brought(tmp_path, official))  # a worker elsewhere installed it
    assert not networks.architecture_info(NAME).installed  # the listing this process made a moment ago
    row = admin.get(ROW).get_data(as_text=True)
    assert "installed" in row and "not installed" not in row
    assert networks.architecture_info(NAME).installed
