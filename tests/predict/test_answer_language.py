"""The model's "Try it" page says why a setting is refused in the reader's language, while the JSON
API (POST /predict, the same service functions) stays English with its stable codes."""
from __future__ import annotations

import io

from tests.predict.conftest import color_image

PT = {"Accept-Language": "pt-BR"}
ES = {"Accept-Language": "es"}


def test_a_model_still_training_cannot_be_made_public_said_in_portuguese(logged_in, make_model):
    from app.extensions import db

    run = make_model(logged_in.user, name="cores")
    run.status = "running"
    db.session.commit()
    page = logged_in.post(f"/models/{run.id}/try/public", data={"public": "1"}, headers=PT)
    assert page.status_code == 409
    assert "O modelo “cores” ainda não pode responder: o treinamento dele está em andamento." in page.text
    api = logged_in.post(f"/models/{run.id}/predict", data={"file": [(io.BytesIO(color_image("red")), "r.png")]},
                         headers=PT)
    assert api.status_code == 409 and api.json["code"] == "not_ready"
    assert api.json["error"] == "Model “cores” cannot answer yet: its training is running."


def test_only_an_admin_chooses_the_site_default_said_in_spanish(logged_in, make_model):
    run = make_model(logged_in.user, public=True)
    page = logged_in.post(f"/models/{run.id}/try/instance-default", data={"use": "1"}, headers=ES)
    assert page.status_code == 403
    assert "Solo un administrador puede elegir el modelo predeterminado de este sitio." in page.text
