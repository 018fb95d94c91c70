"""Admins manage accounts: make/remove admin, disable/enable; never their own account."""
from __future__ import annotations

from app.extensions import db
from app.models import User
from tests.conftest import flashes


def test_users_page_lists_accounts_without_self_actions(admin_client, make_user):
    bob = make_user("bob")
    page = admin_client.get("/admin/users").get_data(as_text=True)
    assert "bob" in page and "root" in page and "(you)" in page
    assert f"/admin/users/{bob.id}/admin" in page
    assert f"/admin/users/{admin_client.user.id}/admin" not in page
    bob.image_count = 3132
    db.session.commit()
    assert "3,132 images" in admin_client.get("/admin/users").get_data(as_text=True)  # the locale's way
    assert "3.132 imagens" in admin_client.get("/admin/users", headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)


def test_make_admin_and_remove_admin(admin_client, make_user):
    bob = make_user("bob")
    response = admin_client.post(f"/admin/users/{bob.id}/admin", data={"value": "1"})
    assert response.status_code == 302
    assert flashes(admin_client.get("/admin/users").data) == ["bob is now an admin."]
    assert db.session.get(User, bob.id).is_admin
    partial = admin_client.post(f"/admin/users/{bob.id}/admin", data={"value": "0"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and b'<tr id="user-' in partial.data
    assert b"no longer an admin" in partial.data
    db.session.expire_all()
    assert not db.session.get(User, bob.id).is_admin


def fresh(client, method: str, url: str, **kwargs):
    """A request in its own app context: two clients in one test must not share flask-login's `g`."""
    with client.application.app_context():
        return client.open(url, method=method, **kwargs)


def test_disable_signs_the_user_out_and_blocks_login(app, admin_client, make_user):
    bob = make_user("bob")
    bob_client = app.test_client()
    credentials = {"username": "bob", "password": "correct horse"}
    assert fresh(bob_client, "POST", "/login", data=credentials).status_code == 302
    assert fresh(bob_client, "GET", "/datasets").status_code == 200
    assert fresh(admin_client, "POST", f"/admin/users/{bob.id}/disabled", data={"value": "1"}).status_code == 302
    assert fresh(bob_client, "GET", "/datasets").headers["Location"].startswith("/login")
    assert fresh(bob_client, "GET", "/datasets").headers["Location"].startswith("/login")  # stays out
    assert fresh(bob_client, "POST", "/login", data=credentials).status_code == 403
    assert fresh(admin_client, "POST", f"/admin/users/{bob.id}/disabled", data={"value": "0"}).status_code == 302
    assert fresh(bob_client, "POST", "/login", data=credentials).status_code == 302


def test_admin_cannot_demote_or_disable_themselves(admin_client):
    me = admin_client.user.id
    for flag in ("admin", "disabled"):
        value = "0" if flag == "admin" else "1"
        response = admin_client.post(f"/admin/users/{me}/{flag}", data={"value": value})
        assert response.status_code == 409
        assert b"cannot" in response.data
        htmx = admin_client.post(f"/admin/users/{me}/{flag}", data={"value": value}, headers={"HX-Request": "true"})
        assert htmx.status_code == 409 and b'<tr id="user-' in htmx.data
    db.session.expire_all()
    user = db.session.get(User, me)
    assert user.is_admin and not user.is_disabled


def test_user_actions_need_csrf_and_a_real_user(admin_client):
    assert admin_client.post("/admin/users/999/admin", data={"value": "1"}).status_code == 404
    make = admin_client.post(f"/admin/users/{admin_client.user.id}/admin", data={"value": "1"}, csrf=False)
    assert make.status_code == 400
