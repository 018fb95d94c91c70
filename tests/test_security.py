"""Account and request hardening: lockout under concurrency, server-side sessions behind the cookies,
no username enumeration, common passwords refused, security headers, bad ids and headers answered 4xx."""
from __future__ import annotations

import re
import threading
from pathlib import Path

from app.extensions import db
from app.models import User, UserSession
from tests.conftest import flashes, login

TEMPLATES = Path(__file__).resolve().parents[1] / "app"


def test_concurrent_wrong_passwords_lose_no_increment_and_lock(app, make_user):
    from app.blueprints.auth.services import LoginLocked, authenticate

    user = make_user("alice")
    outcomes, errors = [], []

    def attempt():
        with app.app_context():
            try:
                outcomes.append(authenticate("alice", "wrong password"))
            except LoginLocked:
                outcomes.append("locked")
            except Exception as exc:  # noqa: BLE001 - any other error is the finding
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt) for _ in range(app.config["LOGIN_MAX_FAILURES"] * 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert user.locked_until is not None, outcomes  # every failure counted: the limit was reached


def test_each_login_gets_new_cookies_and_logout_kills_the_old_ones(app, client, make_user):
    make_user("alice")
    login(client)
    session_1, remember_1 = client.get_cookie("session").value, client.get_cookie("remember_token").value
    client.post("/logout")
    login(client)
    assert client.get_cookie("remember_token").value != remember_1
    client.post("/logout")
    for name, value in (("session", session_1), ("remember_token", remember_1)):
        replay = app.test_client()
        replay.set_cookie(name, value)
        assert replay.get("/datasets").status_code == 302, name  # to the login page


def test_log_out_everywhere_and_password_change_end_other_browsers(app, make_user):
    make_user("alice")
    laptop, phone, tablet = app.test_client(), app.test_client(), app.test_client()
    for c in (laptop, phone, tablet):
        assert login(c).status_code == 302
    changed = laptop.post("/account", data={"current": "correct horse", "password": "a much longer passphrase",
                                            "confirm": "a much longer passphrase"})
    assert changed.status_code == 302
    assert laptop.get("/datasets").status_code == 200      # this browser stays in
    assert phone.get("/datasets").status_code == 302       # the others are out
    assert login(tablet, password="a much longer passphrase").status_code == 302
    tablet.post("/account/logout-everywhere")
    assert laptop.get("/datasets").status_code == 302
    assert db.session.query(UserSession).count() == 0


def test_disabling_an_account_deletes_its_sessions(app, make_user):
    from app.blueprints.admin.services import set_disabled

    admin = make_user("root", is_admin=True)
    user = make_user("alice")
    c = app.test_client()
    login(c)
    set_disabled(admin.id, user.id, True)
    assert db.session.query(UserSession).filter_by(user_id=user.id).count() == 0


def test_unknown_usernames_cost_a_hash_and_lock_like_real_ones(app, client, make_user, monkeypatch):
    from app.blueprints.auth import services

    make_user("alice")
    checked = []
    real = services.check_password_hash
    monkeypatch.setattr(services, "check_password_hash", lambda h, p: checked.append(1) or real(h, p))
    response = login(client, "nobody-here", "whatever pass")
    assert response.status_code == 401 and checked
    assert "Wrong username or password." in flashes(response.data)
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        login(client, "nobody-here", "whatever pass")
    locked = login(client, "nobody-here", "whatever pass")
    assert locked.status_code == 429
    assert any("Too many failed attempts" in m for m in flashes(locked.data))


def test_common_passwords_are_refused_and_long_passphrases_welcome(client):
    common = client.post("/register", data={"username": "bob", "password": "password123",
                                            "confirm": "password123"})
    assert common.status_code == 422 and b"most common" in common.data
    phrase = "correct horse battery staple " * 6  # 174 characters
    ok = client.post("/register", data={"username": "bob", "password": phrase, "confirm": phrase})
    assert ok.status_code == 302
    client.post("/logout")
    assert login(client, "bob", phrase).status_code == 302
    huge = "x" * 5000
    assert client.post("/register", data={"username": "carol", "password": huge, "confirm": huge}).status_code == 422


def test_pages_send_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp.split(
        "script-src")[1].split(";")[0]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]


def test_templates_hold_no_inline_script_or_handler():
    inline_handler = re.compile(r"\son[a-z]+\s*=", re.I)
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
    ours = [p for p in TEMPLATES.rglob("*.html") if "rq_dashboard" not in p.parts]  # it has its own policy
    offenders = [str(p) for p in ours if inline_handler.search(p.read_text()) or inline_script.search(p.read_text())]
    assert offenders == []


def test_ids_too_large_for_the_database_are_a_404(logged_in):
    for url in ("/datasets/99999999999999999999", "/models/99999999999999999999",
                "/datasets/9223372036854775808/label"):
        assert logged_in.get(url).status_code == 404, url


def test_next_with_a_line_break_is_ignored(client, make_user):
    make_user("alice")
    response = client.post("/login?next=/%0D%0AX-Injected:%201", data={"username": "alice",
                                                                       "password": "correct horse"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/datasets"
    assert "X-Injected" not in response.headers


def test_request_ids_from_outside_must_be_short_plain_tokens(client):
    assert client.get("/login", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    forged = client.get("/login", headers={"X-Request-Id": "x id=1 GET /admin -> 200"})
    assert re.fullmatch(r"[0-9a-f]{12}", forged.headers["X-Request-Id"])


def test_huge_ids_in_filters_forms_and_selections_are_clean_4xx(logged_in):
    from app.blueprints.datasets.services import create_dataset

    dataset = create_dataset(logged_in.user.id, "Big ids")
    huge = "99999999999999999999999"
    assert logged_in.get(f"/datasets/{dataset.id}/label?filter={huge}").status_code == 404
    assert logged_in.get(f"/datasets/{dataset.id}/label?after={huge}").status_code == 200  # junk cursor ignored
    for data in ({"image_ids": [huge], "label_id": ""}, {"image_ids": ["1"], "label_id": huge}):
        response = logged_in.post(f"/datasets/{dataset.id}/images/label", data=data)
        assert response.status_code == 404, data
    assert logged_in.post(f"/datasets/{dataset.id}/images/delete", data={"image_ids": [huge]}).status_code == 404
    assert logged_in.post(f"/datasets/{dataset.id}/suggestions", data={"model_id": huge}).status_code == 404


def test_parse_id_accepts_only_database_sized_positive_integers():
    from app.ids import parse_id

    assert [parse_id(v) for v in ("12", 12, " 7 ", "9223372036854775807")] == [12, 12, 7, 2**63 - 1]
    assert [parse_id(v) for v in ("0", "-3", "9223372036854775808", "1e3", "", None, True, 3.0)] == [None] * 8
