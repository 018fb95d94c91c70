"""Fetching and installing weights files: downloads from a local HTTP server started here (generated
state dicts, catalogue entries pointed at it), uploads/imports, and every way a file is refused."""
from __future__ import annotations

import io
import socket

import pytest

from app.ml import networks, weights
from app.ml.errors import WeightsError
from tests.weights_support import (folder_files, generated_weights, point_at, tensor_file, weights_folder,
                                   weights_server)

NAME = "mobilenet_v3_large"   # the smallest torchvision file (~22 MB generated)


@pytest.fixture
def folder(tmp_path):
    with weights_folder(tmp_path / "weights") as path:
        yield path


@pytest.fixture
def server():
    with weights_server() as (srv, base):
        srv.base = base
        yield srv


def test_download_streams_with_progress_checks_and_installs(folder, server, monkeypatch):
    data = generated_weights(NAME)
    path = point_at(monkeypatch, NAME, server.base, data)
    server.routes[path] = (data, None)
    seen = []
    assert not networks.architecture_info(NAME).installed
    installed = weights.download(NAME, progress=lambda done, total: seen.append((done, total)))
    assert installed == networks.weights_path(NAME) and installed.read_bytes() == data
    assert len(seen) >= 3 and seen[-1] == (len(data), len(data))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[0][0] < len(data)
    assert networks.architecture_info(NAME).available
    details = weights.installed_details(NAME)
    assert details["bytes"] == len(data) and details["source"].startswith("downloaded from http://127.0.0.1")
    assert folder_files(folder) == sorted([installed.name, installed.name + ".json"])  # .incoming/ is empty


def test_hash_mismatch_is_refused_and_nothing_kept(folder, server, monkeypatch):
    data = generated_weights(NAME)
    path = point_at(monkeypatch, NAME, server.base, data)
    server.routes[path] = (data[:-10] + b"0123456789", None)  # same length, other bytes
    with pytest.raises(WeightsError) as exc:
        weights.download(NAME)
    assert "its SHA-256 starts with" in exc.value.message and "not " + path[-12:-4] in exc.value.message
    assert folder_files(folder) == [] and not networks.architecture_info(NAME).installed


def test_truncated_download_is_refused_and_nothing_kept(folder, server, monkeypatch):
    data = generated_weights(NAME)
    path = point_at(monkeypatch, NAME, server.base, data)
    server.routes[path] = (data, "truncate")
    with pytest.raises(WeightsError) as exc:
        weights.download(NAME)
    assert "stopped early" in exc.value.message and f"of {len(data):,} bytes" in exc.value.message
    assert exc.value.line["values"]["total"] == len(data)  # a words line: the admin page says it translated
    assert folder_files(folder) == [] and not networks.architecture_info(NAME).installed


def test_no_internet_gives_a_clear_message_suggesting_the_upload(folder, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on: like a server without internet
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    point_at(monkeypatch, NAME, f"http://127.0.0.1:{port}", b"whatever")
    with pytest.raises(WeightsError) as exc:
        weights.download(NAME, timeout=5)
    assert "Could not reach" in exc.value.message and "upload it on Admin → Networks" in exc.value.message
    assert folder_files(folder) == []


def test_server_error_is_reported(folder, server, monkeypatch):
    point_at(monkeypatch, NAME, server.base, b"x")  # the server has no such file: 404
    with pytest.raises(WeightsError) as exc:
        weights.download(NAME)
    assert "answered 404" in exc.value.message and folder_files(folder) == []


def test_file_with_the_right_hash_must_still_load_strictly(folder, server, monkeypatch):
    data = tensor_file(**{"features.0.0.weight": __import__("torch").zeros(1)})  # a real .pth, wrong network
    path = point_at(monkeypatch, NAME, server.base, data)
    server.routes[path] = (data, None)
    with pytest.raises(WeightsError) as exc:
        weights.download(NAME)
    assert "does not fit MobileNetV3-Large" in exc.value.message
    assert folder_files(folder) == [] and not networks.architecture_info(NAME).installed


def test_upload_path_stages_checks_and_installs(folder, monkeypatch):
    data = generated_weights(NAME)
    point_at(monkeypatch, NAME, "http://unused.invalid", data)
    staged = weights.stage(NAME, io.BytesIO(data))
    assert staged.path.parent == folder / ".incoming" and staged.size == len(data)
    assert not networks.architecture_info(NAME).installed  # staged is not installed
    weights.install_staged(NAME, staged.path, "upload by test")
    assert networks.architecture_info(NAME).available and not staged.path.exists()
    assert weights.installed_details(NAME)["source"] == "upload by test"


@pytest.mark.parametrize("kind", ["truncated", "other file"])
def test_upload_of_a_wrong_or_truncated_file_is_refused_and_nothing_kept(folder, monkeypatch, kind):
    data = generated_weights(NAME)
    point_at(monkeypatch, NAME, "http://unused.invalid", data)
    bad = data[: len(data) // 3] if kind == "truncated" else data + bytes(2**20)
    with pytest.raises(WeightsError) as exc:
        weights.stage(NAME, io.BytesIO(bad))
    assert "its SHA-256 starts with" in exc.value.message
    assert ("incomplete" in exc.value.message) == (kind == "truncated")
    head, size = exc.value.line["parts"]  # which file it is not, then how its size differs
    assert head["values"]["network"] == "MobileNetV3-Large" and " ".join([head["message"], size["message"]]) \
        == exc.value.message and size["values"]["size_bytes"] == len(bad)
    assert folder_files(folder) == []


def test_a_small_file_is_measured_in_kb_not_zero_mb(folder, monkeypatch):
    from app.ml.words import size_text

    data = generated_weights(NAME)
    point_at(monkeypatch, NAME, "http://unused.invalid", data)
    with pytest.raises(WeightsError) as exc:
        weights.stage(NAME, io.BytesIO(b"x" * 5 * 1024))
    assert "It is 5.0 KB where " in exc.value.message and "0.0 MB" not in exc.value.message
    assert [size_text(n) for n in (500, 5 * 1024, 2**20 // 10 + 1, 22_130_000)] == \
        ["500 B", "5.0 KB", "0.1 MB", "21.1 MB"]


def test_import_of_a_local_file_and_of_a_file_that_does_not_load(folder, monkeypatch, tmp_path):
    data = b"not a pytorch file at all"
    point_at(monkeypatch, NAME, "http://unused.invalid", data)
    (tmp_path / "brought.pth").write_bytes(data)
    with pytest.raises(WeightsError) as exc:
        weights.install_file(NAME, tmp_path / "brought.pth")
    assert "not a readable PyTorch weights file" in exc.value.message
    assert folder_files(folder) == [] and (tmp_path / "brought.pth").exists()  # the original stays


def test_built_in_and_scratch_networks_have_nothing_to_install(folder):
    for name in ("efficientnet_lite0", "small_cnn"):
        with pytest.raises(WeightsError):
            weights.stage(name, io.BytesIO(b"x"))
