from html import unescape

from app.extensions import db
from app.models import User
from tests.conftest import flashes, login


def test_register_logs_in_and_hashes_password(client, app):
    response = client.post("/register", data={"username": "bob", "password": "longenough", "confirm": "longenough"})
    assert response.status_code == 302
    user = db.session.query(User).filter_by(username="bob").one()
    assert user.password_hash != "longenough" and user.check_password("longenough")
    assert client.get("/datasets").status_code == 200


def test_register_duplicate_username_case_insensitive(client, make_user):
    make_user("alice")
    response = client.post("/register", data={"username": "Alice", "password": "longenough", "confirm": "longenough"})
    assert response.status_code == 422
    assert b"taken" in response.data
    assert db.session.query(User).count() == 1


def test_register_short_password_and_mismatch(client, app):
    response = client.post("/register", data={"username": "bob", "password": "short", "confirm": "short"})
    assert response.status_code == 422 and b"at least 8 characters" in response.data
    response = client.post("/register", data={"username": "bob", "password": "longenough", "confirm": "different"})
    assert response.status_code == 422 and b"passwords differ" in response.data
    assert db.session.query(User).count() == 0


def test_register_shows_an_error_instead_of_the_hint_it_restates(client):
    response = client.post("/register", data={"username": "b@d", "password": "short", "confirm": "short"})
    html = unescape(response.get_data(as_text=True))
    assert "Use at least 8 characters." in html and "At least 8 characters." not in html
    assert "Use letters, digits, '.', '_' or '-' only." in html and "Letters, digits, '.', '_' or '-'." not in html
    assert 'id="password-hint"' not in html and 'aria-describedby="password-error"' in html
    common = client.post("/register", data={"username": "bob", "password": "password", "confirm": "password"})
    html = unescape(common.get_data(as_text=True))  # an error that says something else keeps the hint beside it
    assert "most common ones" in html and "At least 8 characters." in html
    assert "Letters, digits, '.', '_' or '-'." in html  # no error on the username: its hint stays


def test_login_logout(client, make_user):
    make_user("alice")
    assert login(client).status_code == 302
    assert client.get("/datasets").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/datasets").status_code == 302


def test_wrong_password(client, make_user):
    make_user("alice")
    response = login(client, password="wrong password")
    assert response.status_code == 401
    assert "Wrong username or password." in flashes(response.data)
    assert client.get("/datasets").status_code == 302


def test_repeated_failures_lock_the_account(client, make_user, app):
    make_user("alice")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert login(client, password="nope nope").status_code == 401
    response = login(client)  # right password, but locked
    assert response.status_code == 429
    assert any("Too many failed attempts" in m for m in flashes(response.data))


def test_post_without_csrf_token_is_rejected(client, make_user):
    make_user("alice")
    response = client.post("/login", data={"username": "alice", "password": "correct horse"}, csrf=False)
    assert response.status_code == 400
    assert b"security token" in response.data
    assert response.headers["X-Request-Id"]  # rejected requests are still traceable in the logs
    assert client.get("/datasets").status_code == 302


def test_protected_page_redirects_to_login_and_back(client, make_user):
    make_user("alice")
    response = client.get("/models")
    assert response.status_code == 302
    assert "/login?next=/models" in response.headers["Location"]
    response = client.post("/login?next=/models", data={"username": "alice", "password": "correct horse"})
    assert response.headers["Location"] == "/models"


def test_next_to_another_site_is_ignored(client, make_user):
    make_user("alice")
    for evil in ("https://evil.example", "//evil.example/x", "/\\evil.example", "https:/evil.example"):
        response = client.post(f"/login?next={evil}", data={"username": "alice", "password": "correct horse"})
        assert response.headers["Location"] == "/datasets", evil
        client.post("/logout")


def test_htmx_request_gets_hx_redirect_to_login(client):
    response = client.get("/models", headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"].startswith("/login?next=/models")


def test_disabled_user_cannot_log_in(client, make_user):
    user = make_user("alice")
    user.is_disabled = True
    db.session.commit()
    assert login(client).status_code == 403


def test_create_admin_command(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-admin", "--username", "root", "--password", "secretpass"])
    assert result.exit_code == 0, result.output
    assert db.session.query(User).filter_by(username="root").one().is_admin


def test_create_admin_asks_a_new_account_for_a_password_and_an_existing_one_for_none(app, make_user):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["create-admin", "--username", "newbie"], input="secretpass\nsecretpass\n")
    assert created.exit_code == 0 and "Password" in created.output and "Admin 'newbie' created." in created.output
    make_user("alice")
    promoted = runner.invoke(args=["create-admin", "--username", "alice"], input="")  # no prompt to answer
    assert promoted.exit_code == 0, promoted.output
    assert "Password" not in promoted.output and "Their password is unchanged" in promoted.output
    given = runner.invoke(args=["create-admin", "--username", "alice", "--password", "ignored123"])
    assert "the --password given was not used" in given.output
    assert db.session.query(User).filter_by(username="alice").one().is_admin


def test_a_logged_in_visitor_is_sent_on_from_the_login_and_register_pages(client, make_user):
    make_user("alice")
    login(client, "alice")
    assert client.get("/login").headers["Location"].endswith("/datasets")
    assert client.get("/login?next=/models").headers["Location"].endswith("/models")
    assert client.get("/login?next=https://evil.example/").headers["Location"].endswith("/datasets")
    assert client.get("/register").headers["Location"].endswith("/datasets")
    client.post("/logout")
    assert client.get("/login").status_code == 200 and client.get("/register").status_code == 200
