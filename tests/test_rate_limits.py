"""Rate limits on the account routes: they trip, answer 429 with Retry-After, and recover; the client IP
comes from the connection unless a trusted proxy count is configured."""
from __future__ import annotations

import time

import pytest

from tests.conftest import login

# Short windows, so the tests can watch a limit recover; long enough that a loaded machine still sends the
# requests of one test inside one window. Tests that never wait a window out use LONG_WINDOW.
WINDOW = {"RATELIMIT_ENABLED": True, "RATELIMIT_LOGIN": "3 per 4 seconds",
          "RATELIMIT_REGISTER": "2 per 4 seconds", "RATELIMIT_TOKENS": "2 per 4 seconds"}
LONG_WINDOW = {**WINDOW, "RATELIMIT_LOGIN": "3 per 1 minute"}


@pytest.fixture
def app_config():
    return dict(WINDOW)


def wait_out(response) -> None:
    """Sleep until the limit's window has passed (what the Retry-After header says)."""
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= 5
    time.sleep(seconds)


def test_login_limit_trips_per_ip_and_recovers(client, make_user):
    make_user("alice")
    statuses = [login(client, password="wrong password").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    refused = login(client)  # even the right password: the IP is over its budget
    assert refused.status_code == 429
    assert b"Too many requests" in refused.data and b"Slow down" in refused.data
    wait_out(refused)
    assert login(client).status_code == 302


def test_showing_the_login_page_is_not_counted(client):
    for _ in range(5):
        assert client.get("/login").status_code == 200


def test_register_limit_trips_and_recovers(client):
    def register(name):
        return client.post("/register", data={"username": name, "password": "a long passphrase",
                                              "confirm": "a long passphrase"})

    assert register("user1").status_code == 302
    client.post("/logout")
    assert register("user2").status_code == 302
    client.post("/logout")
    refused = register("user3")
    assert refused.status_code == 429
    from app.models import User
    from app.extensions import db

    assert db.session.query(User).filter_by(username="user3").first() is None
    wait_out(refused)
    assert register("user3").status_code == 302


def test_token_creation_limit_answers_htmx_with_a_fragment(logged_in):
    for i in range(2):
        assert logged_in.post("/tokens", data={"name": f"t{i}"}).status_code == 200
    refused = logged_in.post("/tokens", data={"name": "t3"}, headers={"HX-Request": "true"})
    assert refused.status_code == 429
    assert refused.data.decode().startswith('<div class="flash flash-error"')
    assert "Try again in" in refused.data.decode()
    wait_out(refused)
    assert logged_in.post("/tokens", data={"name": "t3"}).status_code == 200


def test_json_clients_get_a_json_429(client, make_user):
    make_user("alice")
    for _ in range(3):
        login(client, password="wrong password")
    refused = client.post("/login", data={"username": "alice", "password": "x"},
                          headers={"Accept": "application/json"})
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["status"] == 429 and body["code"] == "rate_limited"
    assert body["retry_after"] == int(refused.headers["Retry-After"])
    assert "3 per 4 second" in body["error"]


def test_a_spoofed_forwarded_for_header_is_ignored_without_a_trusted_proxy(client, make_user):
    make_user("alice")
    for i in range(3):
        login(client, password="wrong password")
    spoofed = client.post("/login", data={"username": "alice", "password": "correct horse"},
                          headers={"X-Forwarded-For": "203.0.113.9"})
    assert spoofed.status_code == 429


def test_switched_off_no_limit_applies(app, client, make_user):
    from app.extensions import limiter

    make_user("alice")
    app.config["RATELIMIT_LOGIN"] = ""  # an empty limit switches that one limit off
    # 4 > the 3 the limit would allow (and < LOGIN_MAX_FAILURES, the per-account lockout)
    assert all(login(client, password="wrong password").status_code == 401 for _ in range(4))
    assert limiter.enabled


class TestBehindAProxy:
    @pytest.fixture
    def app_config(self):
        return {**LONG_WINDOW, "TRUSTED_PROXIES": 1}

    def test_the_proxys_forwarded_address_is_the_client(self, client, make_user):
        make_user("alice")
        for _ in range(3):
            response = client.post("/login", data={"username": "alice", "password": "nope nope"},
                                   headers={"X-Forwarded-For": "198.51.100.1"})
            assert response.status_code == 401
        assert client.post("/login", data={"username": "alice", "password": "nope nope"},
                           headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429
        # another client behind the same proxy has its own budget...
        assert client.post("/login", data={"username": "alice", "password": "nope nope"},
                           headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 401
        # ...and a client cannot pick one by prepending its own entry: the proxy appends the real one
        assert client.post("/login", data={"username": "alice", "password": "nope nope"},
                           headers={"X-Forwarded-For": "10.9.9.9, 198.51.100.1"}).status_code == 429


class TestDisabled:
    @pytest.fixture
    def app_config(self):
        return {**WINDOW, "RATELIMIT_ENABLED": False}

    def test_nothing_is_limited(self, client, make_user):
        make_user("alice")
        assert all(login(client, password="wrong password").status_code == 401 for _ in range(4))
