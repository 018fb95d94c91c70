"""The 'Try it' page, model settings (public, defaults) and the OpenAPI document."""
from __future__ import annotations

import io
import json

from app.models import DatasetShare
from tests.conftest import flashes, login
from tests.predict.conftest import color_image


def test_try_page_for_owner(logged_in, make_model):
    run = make_model(logged_in.user)
    response = logged_in.get(f"/models/{run.id}/try")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'data-predict-url="/models/{run.id}/predict"' in html and "js/predict.js" in html
    assert "Use as my default for /predict" in html and "Make public" in html
    assert "Make it the site default" not in html  # only for admins, on public models


def test_try_page_access(app, make_user, make_model):
    bob = make_user("bob")
    private, public = make_model(bob, name="private"), make_model(bob, name="public", public=True)
    anonymous = app.test_client()
    assert anonymous.get(f"/models/{private.id}/try").status_code == 404
    response = anonymous.get(f"/models/{public.id}/try")
    assert response.status_code == 200 and "Make public" not in response.get_data(as_text=True)


def test_public_toggle_needs_editor(app, logged_in, make_user, make_model):
    from app.extensions import db

    bob = make_user("bob")
    run = make_model(bob)
    assert logged_in.post(f"/models/{run.id}/try/public", data={"public": "1"}).status_code == 404
    db.session.add(DatasetShare(dataset_id=run.dataset_id, user_id=logged_in.user.id, role="viewer"))
    db.session.commit()
    assert logged_in.post(f"/models/{run.id}/try/public", data={"public": "1"}).status_code == 403
    assert logged_in.get(f"/models/{run.id}/try").status_code == 200  # viewers may still try it
    owner = app.test_client()
    login(owner, "bob")
    response = owner.post(f"/models/{run.id}/try/public", data={"public": "1"}, follow_redirects=True)
    assert "is now public" in flashes(response.data)[0]
    db.session.refresh(run)
    assert run.is_public


def test_instance_default_admin_only_public_only_and_cleared_when_private(app, make_user, make_model):
    from app.extensions import db

    alice = make_user("alice")
    make_user("root", is_admin=True)
    run = make_model(alice)
    admin = app.test_client()
    login(admin, "root")
    response = admin.post(f"/models/{run.id}/try/instance-default", data={"use": "1"})
    assert response.status_code == 404  # private model of someone else
    owner = app.test_client()
    login(owner, "alice")
    assert owner.post(f"/models/{run.id}/try/instance-default", data={"use": "1"}).status_code == 403
    owner.post(f"/models/{run.id}/try/public", data={"public": "1"})
    assert admin.post(f"/models/{run.id}/try/instance-default", data={"use": "1"}).status_code == 302
    anonymous = app.test_client()
    data = lambda: {"file": [(io.BytesIO(color_image("green")), "g.png")]}  # noqa: E731
    assert anonymous.post("/predict", data=data(), csrf=False).status_code == 200
    owner.post(f"/models/{run.id}/try/public", data={"public": "0"})
    assert anonymous.post("/predict", data=data(), csrf=False).status_code == 401
    db.session.expire_all()


def test_openapi_document(client):
    response = client.get("/api/openapi.json")
    spec = json.loads(response.get_data(as_text=True))
    assert spec["openapi"].startswith("3.")
    post = spec["paths"]["/predict"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"200", "400", "401", "404"} <= set(post["responses"])
    assert "/models/{run_id}/predict" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "category_index" in spec["components"]["schemas"]["PredictionOut"]["properties"]
    # Schemathesis found the hand-written document let a request without `file` pass; a generated one
    # requires what the server requires
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert spec["components"]["schemas"][form]["required"] == ["file"]


def test_the_try_page_belongs_to_models_in_the_menu(logged_in, make_model):
    import re

    run = make_model(logged_in.user)
    html = logged_in.get(f"/models/{run.id}/try").get_data(as_text=True)
    assert re.findall(r'class="active" aria-current="page">([^<]*)</a>', html) == ["Models"]
