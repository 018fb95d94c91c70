"""Which language a page is in: switcher / saved preference > Accept-Language > English; <html lang>."""
from __future__ import annotations

import re

import pytest

from app.i18n import normalise_language
from tests.conftest import login

PT = {"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.5"}


def html_lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.get_data(as_text=True)).group(1)


@pytest.mark.parametrize("header,expected", [
    (None, "en"), ("pt-BR", "pt-BR"), ("pt-PT,pt;q=0.8", "pt-BR"), ("es-MX,es;q=0.9", "es"),
    ("de-DE,fr;q=0.9", "en"), ("de;q=1.0,es;q=0.5,pt;q=0.4", "es"),
])
def test_accept_language_picks_the_first_language_we_speak(client, header, expected):
    response = client.get("/login", headers={"Accept-Language": header} if header else {})
    assert html_lang(response) == expected
    assert "Accept-Language" in response.headers.get("Vary", "")


def test_normalise_language():
    assert normalise_language("pt-br") == "pt_BR"
    assert normalise_language("es_AR") == "es"
    assert normalise_language("xx") is None and normalise_language("") is None


def test_switcher_for_a_logged_out_visitor_wins_over_the_browser(client):
    response = client.post("/language", data={"lang": "es", "next": "/register"}, headers=PT)
    assert response.status_code == 302 and response.headers["Location"] == "/register"
    assert "lang=es" in response.headers["Set-Cookie"]
    assert html_lang(client.get("/register", headers=PT)) == "es"
    client.post("/language", data={"lang": ""})  # back to "follow my browser"
    assert html_lang(client.get("/register", headers=PT)) == "pt-BR"


def test_switcher_refuses_an_unknown_language_and_a_foreign_next(client):
    assert client.post("/language", data={"lang": "klingon"}).status_code == 422
    response = client.post("/language", data={"lang": "es", "next": "https://evil.example/"})
    assert response.headers["Location"] == "/"


def test_switcher_without_csrf_token_is_refused(client):
    assert client.post("/language", data={"lang": "es"}, csrf=False).status_code == 400


def test_saved_preference_follows_the_user_to_another_browser(app, client, make_user):
    from app.extensions import db
    from app.models import User

    make_user("alice")
    login(client)
    client.post("/language", data={"lang": "pt_BR"}, headers={"Accept-Language": "es"})
    assert db.session.get(User, 1).locale == "pt_BR"

    other = app.test_client()  # a new browser: no cookie, asks for Spanish
    assert html_lang(other.get("/login", headers={"Accept-Language": "es"})) == "es"
    login(other)
    assert html_lang(other.get("/account", headers={"Accept-Language": "es"})) == "pt-BR"


def test_saved_preference_wins_over_this_browsers_cookie(app, client, make_user):
    from app.blueprints.auth.services import save_language

    user = make_user("alice")
    save_language(user, "es")
    client.post("/language", data={"lang": "pt_BR"})  # logged out: only this browser's cookie
    login(client)
    assert html_lang(client.get("/account", headers=PT)) == "es"


def test_switcher_is_in_the_header_for_everyone(client, logged_in):
    anonymous = client.application.test_client()
    for page in (anonymous.get("/login"), logged_in.get("/account")):
        html = page.get_data(as_text=True)
        assert 'action="/language"' in html
        assert all(f'value="{code}"' in html for code in ("en", "pt_BR", "es"))
