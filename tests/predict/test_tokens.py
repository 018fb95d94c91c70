"""API tokens: create (shown once), use, hashed at rest, revoke; CSRF and origin rules of the API."""
from __future__ import annotations

import io
import re

from sqlalchemy import select

from tests.conftest import login
from tests.predict.conftest import color_image


def upload(name="red"):
    return {"file": [(io.BytesIO(color_image(name, seed=7)), f"{name}.png")]}


def create_token(client, name="laptop script") -> str:
    response = client.post("/tokens", data={"name": name})
    assert response.status_code == 200
    match = re.search(r'value="(ics_[A-Za-z0-9_\-]+)"', response.get_data(as_text=True))
    assert match, "the new token is shown on the page"
    return match.group(1)


def test_token_create_use_revoke(app, logged_in, make_model):
    from app.models import ApiToken

    run = make_model(logged_in.user)  # private
    plain = create_token(logged_in)
    page = logged_in.get("/tokens").get_data(as_text=True)
    assert "laptop script" in page and plain not in page  # listed, never shown again
    assert plain[:10] in page

    script = app.test_client()
    headers = {"Authorization": f"Bearer {plain}"}
    response = script.post(f"/models/{run.id}/predict", data=upload(), headers=headers, csrf=False)
    assert response.status_code == 200 and response.json["predictions"][0]["category"] == "red"
    response = script.post("/predict", data={**upload("blue"), "model": str(run.id)}, headers=headers, csrf=False)
    assert response.status_code == 200 and response.json["predictions"][0]["category"] == "blue"
    token = app.extensions["sqlalchemy"].session.scalar(select(ApiToken))
    assert token.last_used_at is not None

    response = logged_in.post(f"/tokens/{token.id}/revoke")
    assert response.status_code == 302
    response = script.post(f"/models/{run.id}/predict", data=upload(), headers=headers, csrf=False)
    assert response.status_code == 401 and response.is_json and "not valid" in response.json["error"]


def test_token_is_hashed_at_rest(app, logged_in):
    from app.extensions import db

    plain = create_token(logged_in)
    rows = db.session.execute(db.text("SELECT * FROM api_tokens")).all()
    assert len(rows) == 1
    stored = " ".join(str(v) for v in rows[0])
    assert plain not in stored and plain[10:20] not in stored
    import hashlib
    assert hashlib.sha256(plain.encode()).hexdigest() in stored


def test_wrong_or_malformed_token_is_401_even_for_public_models(app, make_user, make_model):
    run = make_model(make_user("bob"), public=True)
    client = app.test_client()
    for header in ("Bearer ics_wrong", "Basic abc", "Bearer "):
        response = client.post(f"/models/{run.id}/predict", data=upload(), csrf=False,
                               headers={"Authorization": header})
        assert response.status_code == 401 and response.is_json, header


def test_token_of_another_user_cannot_be_revoked(app, logged_in, make_user):
    from app.extensions import db
    from app.models import ApiToken

    create_token(logged_in)
    token_id = db.session.scalar(select(ApiToken.id))
    other = app.test_client()
    make_user("bob")
    login(other, "bob")
    assert other.post(f"/tokens/{token_id}/revoke").status_code == 404
    assert db.session.get(ApiToken, token_id).revoked_at is None


def test_token_name_required_htmx_partial(logged_in):
    response = logged_in.post("/tokens", data={"name": "  "}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Give the token a name" in text and "<html" not in text


def test_tokens_page_needs_login(app):
    response = app.test_client().get("/tokens")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_cross_origin_session_call_refused(logged_in, make_model):
    run = make_model(logged_in.user)
    url = f"/models/{run.id}/predict"
    evil = {"Origin": "https://evil.example"}
    response = logged_in.post(url, data=upload(), headers=evil)  # even with a CSRF token
    assert response.status_code == 403 and response.is_json
    response = logged_in.post(url, data=upload(), headers=evil, csrf=False)
    assert response.status_code == 403 and response.is_json
    response = logged_in.post(url, data=upload(), csrf=False)  # neither CSRF token nor origin
    assert response.status_code == 403 and response.is_json


def test_same_origin_or_csrf_session_calls_accepted(logged_in, make_model):
    run = make_model(logged_in.user)
    url = f"/models/{run.id}/predict"
    assert logged_in.post(url, data=upload()).status_code == 200  # X-CSRFToken, as the browser page
    response = logged_in.post(url, data=upload(), csrf=False, headers={"Origin": "http://localhost"})
    assert response.status_code == 200
    response = logged_in.post(url, data=upload(), csrf=False, headers={"Referer": "http://localhost/models/1/try"})
    assert response.status_code == 200


def test_the_curl_example_uses_the_default_model_once_one_is_chosen(app, logged_in, make_model):
    chosen, newest = make_model(logged_in.user, name="chosen"), make_model(logged_in.user, name="newest")

    def example() -> str:
        page = logged_in.get("/tokens").get_data(as_text=True)
        return re.search(r"<pre class=\"code\" data-curl-example>(.*?)</pre>", page, re.S).group(1), page

    command, page = example()
    assert f"-F model={newest.id} " in command and "your newest model, “newest”" in page
    logged_in.post(f"/models/{chosen.id}/try/default", data={"use": "1"})
    command, page = example()
    assert f"-F model={chosen.id} " in command and "your default model, “chosen”" in page
    assert f"<code>{newest.id}</code> newest" in page  # the others are still listed
    created = logged_in.post("/tokens", data={"name": "script"}).get_data(as_text=True)
    assert f"-F model={chosen.id} " in created  # the example beside a new token too
