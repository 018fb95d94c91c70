"""The JSON API stays English whatever the browser asks for, and every error carries a registered code."""
from __future__ import annotations

import ast
import io
from pathlib import Path

from app.errors import ERROR_CODES, FILE_ERROR_CODES, STATUS_CODES
from tests.conftest import image_bytes
from tests.training.conftest import pretend_translated  # noqa: F401 (a fixture)

APP = Path(__file__).resolve().parents[2] / "app"
PT = {"Accept-Language": "pt-BR"}


def _codes_in_source() -> dict[str, str]:
    """Every literal given as an error `code` in app/: code="x", code = "x", {"code": "x"}."""
    found = {}
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "code" and isinstance(node.value, ast.Constant):
                found[node.value.value] = str(path)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and any(
                    isinstance(t, ast.Name) and t.id in ("code", "UNKNOWN_MODEL") for t in node.targets):
                found[node.value.value] = str(path)
            elif (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DomainError"
                  and len(node.args) >= 3 and isinstance(node.args[2], ast.Constant)):
                found[node.args[2].value] = str(path)
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value == "code" and isinstance(value, ast.Constant):
                        found[value.value] = str(path)
    return {code: where for code, where in found.items() if isinstance(code, str)}


def test_every_code_the_app_gives_is_registered_and_documented():
    codes = _codes_in_source()
    assert {"no_file", "unknown_model", "not_ready", "bad_image"} <= set(codes)  # the scan finds them
    unregistered = {c: w for c, w in codes.items() if c not in ERROR_CODES and c not in FILE_ERROR_CODES}
    assert unregistered == {}
    assert set(STATUS_CODES.values()) <= set(ERROR_CODES)


def test_openapi_document_lists_the_codes(client):
    spec = client.get("/api/openapi.json").get_json()
    error_code = spec["components"]["schemas"]["Error"]["properties"]["code"]
    assert error_code["enum"] == list(ERROR_CODES)
    assert "unknown_model" in error_code["description"]


def test_api_errors_stay_english_with_a_code_for_a_portuguese_browser(client, logged_in):
    from app.blueprints.predict.tokens import create_token

    _row, token = create_token(logged_in.user.id, "script")
    auth = {"Authorization": f"Bearer {token}", **PT}
    missing = client.get("/api/v1/datasets/999", headers=auth)
    assert missing.status_code == 404
    assert missing.get_json()["code"] == "not_found"
    assert missing.get_json()["error"].isascii()
    unknown = client.post("/predict", data={"model": "999"}, headers=auth, csrf=False)
    assert unknown.get_json()["code"] in ("no_file", "unknown_model")
    upload = {"file": (io.BytesIO(image_bytes()), "a.png")}
    model = client.post("/models/999/predict", data=upload, headers=auth, csrf=False).get_json()
    assert model == {"error": "This model does not exist, or you do not have access to it.", "status": 404,
                     "code": "unknown_model"}
    page = client.get("/datasets/999", headers=PT)  # the page, by contrast, follows the browser
    assert '<html lang="pt-BR">' in page.get_data(as_text=True)


def test_the_api_reference_page_follows_the_reader_while_the_document_stays_english(client, pretend_translated):
    from app.blueprints.api.openapi import DESCRIPTION

    pretend_translated("pt_BR", {DESCRIPTION: "Tudo o que as páginas fazem, com `Authorization: Bearer <token>`."})
    page = client.get("/api/docs", headers=PT).get_data(as_text=True)
    assert '<html lang="pt-BR">' in page
    assert "A API responde em inglês" in page  # its own line, translated at last
    assert "Tudo o que as páginas fazem, com <code>Authorization: Bearer &lt;token&gt;</code>." in page  # the lead too
    client.post("/language", data={"lang": "es", "next": "/api/docs"})  # the switcher works there too
    assert '<html lang="es">' in client.get("/api/docs", headers=PT).get_data(as_text=True)
    spec = client.get("/api/openapi.json", headers=PT).get_json()
    assert spec["info"]["description"].isascii()
    missing = client.get("/api/v1/datasets/999", headers=PT)  # no token: the JSON error is English
    assert missing.get_json()["error"].isascii()
