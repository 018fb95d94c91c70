"""Password reset links: an admin (or `flask reset-link`) makes a one-time link, the user sets a new
password with it and is logged in; only the token's hash is stored."""
from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta

from app.extensions import db
from app.models import User, UserSession, utcnow
from tests.conftest import flashes, login

HTMX = {"HX-Request": "true"}
NEW = "a much longer passphrase"
NOT_VALID = "This reset link is not valid any more. Ask an administrator for a new one."


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_in(html: str) -> str:
    return re.search(r"/reset-password/([\w-]+)", html).group(1)


def make_link(admin_client, user) -> str:
    response = admin_client.post(f"/admin/users/{user.id}/reset-link", headers=HTMX)
    assert response.status_code == 200, response.data
    return token_in(response.get_data(as_text=True))


def reload(user) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def test_admin_creates_a_link_shown_once_and_only_its_hash_is_stored(app, admin_client, make_user, caplog):
    caplog.set_level(logging.INFO)
    bob = make_user("bob")
    response = admin_client.post(f"/admin/users/{bob.id}/reset-link", headers=HTMX)
    row = response.get_data(as_text=True)
    assert response.status_code == 200 and row.startswith(f'<tr id="user-{bob.id}"')
    assert response.headers["Cache-Control"] == "no-store"
    token = token_in(row)
    assert f'value="http://localhost/reset-password/{token}"' in row and 'data-copy="#reset-link-' in row
    assert "give it to bob privately" in row and "UTC" in row
    bob = reload(bob)
    assert bob.reset_token_hash == sha256(token) and len(token) >= 43
    assert timedelta(hours=23, minutes=59) < bob.reset_expires_at - utcnow() <= timedelta(hours=24)
    assert token not in admin_client.get("/admin/users").get_data(as_text=True)  # shown once
    logged = [r.getMessage() for r in caplog.records if "reset link" in r.getMessage()]
    assert logged == [f"admin user={admin_client.user.id} created a password reset link for user={bob.id}, "
                      f"valid until {bob.reset_expires_at.isoformat(timespec='minutes')} UTC"]
    assert not any(token in r.getMessage() for r in caplog.records)


def test_without_htmx_the_whole_users_page_shows_the_link_and_a_new_link_replaces_the_old(admin_client, make_user):
    bob = make_user("bob")
    first = make_link(admin_client, bob)
    page = admin_client.post(f"/admin/users/{bob.id}/reset-link")
    assert page.status_code == 200 and "<h1>Users</h1>" in page.get_data(as_text=True)
    second = token_in(page.get_data(as_text=True))
    assert second != first and reload(bob).reset_token_hash == sha256(second)
    assert admin_client.get(f"/reset-password/{first}").status_code == 404
    assert admin_client.get(f"/reset-password/{second}").status_code == 200


def test_the_user_sets_a_new_password_and_is_logged_in_everywhere_else_out(app, admin_client, make_user):
    bob = make_user("bob")
    phone = app.test_client()
    assert login(phone, "bob").status_code == 302
    token = make_link(admin_client, bob)
    browser = app.test_client()
    form = browser.get(f"/reset-password/{token}")
    assert form.status_code == 200 and "For the account bob." in form.get_data(as_text=True)
    assert form.headers["Referrer-Policy"] == "no-referrer"
    done = browser.post(f"/reset-password/{token}", data={"password": NEW, "confirm": NEW})
    assert done.status_code == 302 and done.headers["Location"] == "/datasets"
    page = browser.get("/datasets")
    assert page.status_code == 200 and any("Your new password is set" in m for m in flashes(page.data))
    assert phone.get("/datasets").status_code == 302  # the other session was logged out
    assert db.session.query(UserSession).filter_by(user_id=bob.id).count() == 1
    assert reload(bob).reset_token_hash is None
    assert login(app.test_client(), "bob").status_code == 401  # the old password
    assert login(app.test_client(), "bob", NEW).status_code == 302
    again = app.test_client().post(f"/reset-password/{token}", data={"password": "another passphrase",
                                                                     "confirm": "another passphrase"})
    assert again.status_code == 404 and NOT_VALID in again.get_data(as_text=True)


def test_a_visitor_logged_in_as_someone_else_is_logged_out_first(app, admin_client, make_user):
    bob, carol = make_user("bob"), make_user("carol")
    token = make_link(admin_client, bob)
    browser = app.test_client()
    login(browser, "carol")
    form = browser.get(f"/reset-password/{token}").get_data(as_text=True)
    assert "You are logged in as carol." in form
    assert browser.post(f"/reset-password/{token}", data={"password": NEW, "confirm": NEW}).status_code == 302
    assert "(bob)" in browser.get("/account").get_data(as_text=True)
    assert db.session.query(UserSession).filter_by(user_id=carol.id).count() == 0


def test_expired_unknown_and_disabled_links_are_a_404(admin_client, make_user):
    bob = make_user("bob")
    token = make_link(admin_client, bob)
    bob = reload(bob)
    bob.reset_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    for url in (f"/reset-password/{token}", "/reset-password/nonsense", "/reset-password/" + "x" * 300):
        response = admin_client.get(url)
        assert response.status_code == 404 and NOT_VALID in response.get_data(as_text=True), url
    token = make_link(admin_client, bob)
    bob = reload(bob)
    bob.is_disabled = True
    db.session.commit()
    assert admin_client.get(f"/reset-password/{token}").status_code == 404
    posted = admin_client.post(f"/reset-password/{token}", data={"password": NEW, "confirm": NEW})
    assert posted.status_code == 404 and reload(bob).check_password("correct horse")


def test_disabling_an_account_or_changing_the_password_uses_the_link_up(app, admin_client, make_user):
    bob = make_user("bob")
    token = make_link(admin_client, bob)
    admin_client.post(f"/admin/users/{bob.id}/disabled", data={"value": "1"})
    admin_client.post(f"/admin/users/{bob.id}/disabled", data={"value": "0"})
    assert reload(bob).reset_token_hash is None and admin_client.get(f"/reset-password/{token}").status_code == 404
    token = make_link(admin_client, bob)
    own = app.test_client()
    login(own, "bob")
    own.post("/account", data={"current": "correct horse", "password": NEW, "confirm": NEW})
    assert admin_client.get(f"/reset-password/{token}").status_code == 404


def test_no_link_for_a_disabled_account_or_your_own(admin_client, make_user):
    bob = make_user("bob")
    bob.is_disabled = True
    db.session.commit()
    assert f"/admin/users/{bob.id}/reset-link" not in admin_client.get("/admin/users").get_data(as_text=True)
    row = admin_client.post(f"/admin/users/{bob.id}/reset-link", headers=HTMX)
    assert row.status_code == 409 and f'<tr id="user-{bob.id}"' in row.get_data(as_text=True)
    assert "Enable the account first" in row.get_data(as_text=True)
    page = admin_client.post(f"/admin/users/{bob.id}/reset-link")
    assert page.status_code == 409 and "Enable the account first" in page.get_data(as_text=True)
    own = admin_client.post(f"/admin/users/{admin_client.user.id}/reset-link")
    assert own.status_code == 409 and "your account page" in own.get_data(as_text=True)
    assert db.session.query(User).filter(User.reset_token_hash.is_not(None)).count() == 0


def test_only_admins_create_links(app, logged_in, make_user):
    bob = make_user("bob")
    assert logged_in.post(f"/admin/users/{bob.id}/reset-link").status_code == 404
    assert app.test_client().post(f"/admin/users/{bob.id}/reset-link").status_code == 404
    assert reload(bob).reset_token_hash is None


def test_a_weak_or_mismatched_password_is_refused_and_nothing_changes(app, admin_client, make_user):
    bob = make_user("bob")
    token = make_link(admin_client, bob)
    browser = app.test_client()
    for password, confirm, problem in (("password", "password", "one of the most common ones"),
                                       ("short", "short", "Use at least 8 characters."),
                                       (NEW, NEW + "!", "The passwords differ.")):
        response = browser.post(f"/reset-password/{token}", data={"password": password, "confirm": confirm})
        assert response.status_code == 422 and problem in response.get_data(as_text=True), password
    assert reload(bob).check_password("correct horse") and reload(bob).reset_token_hash == sha256(token)
    assert browser.get("/datasets").status_code == 302  # not logged in


def test_both_forms_need_their_csrf_token(app, admin_client, make_user):
    bob = make_user("bob")
    refused = admin_client.post(f"/admin/users/{bob.id}/reset-link", csrf=False)
    assert refused.status_code == 400 and b"security token" in refused.data
    assert reload(bob).reset_token_hash is None
    token = make_link(admin_client, bob)
    browser = app.test_client()
    assert 'name="csrf_token"' in browser.get(f"/reset-password/{token}").get_data(as_text=True)
    refused = browser.post(f"/reset-password/{token}", data={"password": NEW, "confirm": NEW}, csrf=False)
    assert refused.status_code == 400 and reload(bob).check_password("correct horse")
    assert reload(bob).reset_token_hash == sha256(token)


def test_reset_link_command(app, make_user):
    bob = make_user("bob")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reset-link", "BOB"])
    assert result.exit_code == 0, result.output
    path = result.output.strip().splitlines()[-1]
    assert path.startswith("/reset-password/") and "UTC" in result.output
    assert reload(bob).reset_token_hash == sha256(path.rsplit("/", 1)[1])
    assert app.test_client().get(path).status_code == 200
    unknown = runner.invoke(args=["reset-link", "nobody"])
    assert unknown.exit_code != 0 and "There is no account named 'nobody'." in unknown.output
    bob = reload(bob)
    bob.is_disabled = True
    db.session.commit()
    disabled = runner.invoke(args=["reset-link", "bob"])
    assert disabled.exit_code != 0 and "Enable the account first" in disabled.output


def test_the_login_page_says_who_can_help(client):
    page = client.get("/login").get_data(as_text=True)
    assert "Forgot your password? An administrator of this site can give you a reset link." in page


def test_the_request_log_line_hides_the_token(app, admin_client, make_user, caplog):
    from app.logging_setup import RedactingFormatter

    token = make_link(admin_client, make_user("bob"))
    caplog.set_level(logging.INFO, logger="app.request")
    app.test_client().get(f"/reset-password/{token}?x=1")
    lines = [RedactingFormatter("%(message)s").format(r) for r in caplog.records if r.name == "app.request"]
    assert lines and all(token not in line for line in lines)
    assert "GET /reset-password/*** -> 200" in lines[-1]
