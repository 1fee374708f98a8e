"""Safe to put on the internet: secrets, revocable sessions, rate limits that lock nobody out (issue #10)."""
from __future__ import annotations

import time
from unittest import mock

import pytest
from flask.sessions import SecureCookieSessionInterface

from dashboard import create_app
from dashboard.live.stream import Broker, channels_for, event_stream
from dashboard.secret_key import MissingSecretKey
from dashboard.sessions import revoke_sessions
from tests import factories

ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}
HOME = {"REMOTE_ADDR": "198.51.100.7"}


def _sign_in(client, email="admin-a@example.org", password=factories.PASSWORD, environ=None):  # type: ignore[no-untyped-def]
    return client.post("/login", data={"email": email, "password": password}, environ_base=environ or {})


# Secrets ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", [None, "", "dev-only-change-me"])
def test_given_no_secret_key_or_the_published_default_when_the_app_starts_outside_tests_then_it_refuses(key):
    with pytest.raises(MissingSecretKey, match="SECRET_KEY is not set"):
        create_app({"SECRET_KEY": key, "TESTING": False})


def test_given_a_session_signed_with_another_key_when_it_is_presented_then_it_opens_nothing(client, world, app):
    """The first wave's hole: a cookie signed with the published default opened /platform as a global admin."""
    forger = create_app({"SECRET_KEY": "dev-only-change-me", "TESTING": True})
    forged = SecureCookieSessionInterface().get_signing_serializer(forger).dumps(
        {"_user_id": str(world.global_admin.id), "_fresh": True, "session_version": 0})
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], forged)

    response = client.get("/platform")

    assert response.status_code == 302 and "/login" in response.headers["Location"]


# Sessions --------------------------------------------------------------------------------------------------

def test_given_a_signed_out_session_when_its_old_cookie_is_replayed_then_it_gets_the_sign_in_page(client, world, app):
    _sign_in(client)
    stolen = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    client.post("/logout")

    client.set_cookie(app.config["SESSION_COOKIE_NAME"], stolen)

    assert client.get("/orgs/org-a/integration").status_code == 302
    assert client.get("/events").status_code == 302


def test_given_two_sessions_when_the_password_changes_in_one_then_the_other_ends_and_this_one_stays(app, world):
    here, elsewhere = app.test_client(), app.test_client()
    _sign_in(here)
    _sign_in(elsewhere)

    here.post("/account/password", data={"current": factories.PASSWORD, "new": "a much longer secret",
                                         "confirm": "a much longer secret"})

    assert _as_new_request(here.get, "/orgs/org-a").status_code == 200
    assert _as_new_request(elsewhere.get, "/orgs/org-a").status_code == 302


def _as_new_request(send, *args):  # type: ignore[no-untyped-def]
    """The test's app context outlives requests, and Flask-Login caches the user on `g`: forget it, as a
    real request (with its own app context) would."""
    from flask import g

    g.pop("_login_user", None)
    return send(*args)


@pytest.mark.parametrize("app_config", [{"PERMANENT_SESSION_LIFETIME": 1}])
def test_given_an_idle_session_when_its_idle_time_passes_then_it_has_ended(client, world, app_config):
    _sign_in(client)
    assert _as_new_request(client.get, "/orgs/org-a").status_code == 200
    time.sleep(2.1)
    assert _as_new_request(client.get, "/orgs/org-a").status_code == 302


def test_given_an_open_stream_when_its_session_is_revoked_then_the_stream_closes(app, world, db):
    broker = Broker(app.config["REDIS_URL"])
    stream = event_stream(broker, channels_for(world.admin_a.id, {world.org_a.id}, False), heartbeat=0.2,
                          session_version=world.admin_a.session_version)
    assert next(stream).startswith(b": connected")
    assert broker.subscribed.wait(5)

    revoke_sessions(world.admin_a.id)
    db.session.commit()

    ended = time.monotonic() + 5
    for _chunk in stream:
        assert time.monotonic() < ended, "the revoked session's stream kept going"
    assert time.monotonic() < ended


# Rate limits -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT_PER_ADDRESS": "3 per minute"}])
def test_given_many_sign_ins_from_one_address_when_the_limit_is_passed_then_429_with_retry_after(client, world,
                                                                                                app_config):
    for _ in range(3):
        _sign_in(client, password="wrong", environ=ATTACKER)

    response = _sign_in(client, environ=ATTACKER)

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many attempts" in response.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT_PER_ACCOUNT": "3 per hour"}])
def test_given_an_attacker_failing_on_an_account_when_its_owner_signs_in_from_their_known_browser_then_it_works(
        app, world, app_config):
    """The lockout is no weapon: the owner's browser, known by its device cookie, is exempt."""
    owner = app.test_client()
    _sign_in(owner, environ=HOME)
    owner.post("/logout")
    attacker = app.test_client()
    for _ in range(5):
        _sign_in(attacker, password="guess", environ=ATTACKER)

    assert _sign_in(attacker, environ=ATTACKER).status_code == 429  # even the right password, for a stranger
    assert _sign_in(owner, environ=HOME).status_code == 302


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT_PER_ACCOUNT": "2 per hour"}])
def test_unknown_and_known_accounts_get_the_same_answers(client, world, app_config):
    """No oracle: the same status and message for a wrong password and for an account that does not exist,
    before and after the account limit."""
    answers = {}
    for email in ("admin-a@example.org", "nobody@example.org"):
        statuses = []
        for _ in range(3):
            response = _sign_in(client, email=email, password="wrong", environ=ATTACKER)
            statuses.append((response.status_code, "Wrong email or password" in response.get_data(as_text=True)))
        answers[email] = statuses
    assert answers["admin-a@example.org"] == answers["nobody@example.org"] == [(401, True), (401, True),
                                                                               (429, False)]


def test_an_unknown_account_costs_a_password_hash_like_a_known_one(client, world):
    with mock.patch("dashboard.web.auth.check_password_hash", return_value=False) as hashed:
        _sign_in(client, email="nobody@example.org", password="wrong")
    hashed.assert_called_once()


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT_PER_ACCOUNT": "3 per hour"}])
def test_the_current_password_check_is_limited_like_sign_in(client, world, login, app_config):
    login(world.admin_a)
    for _ in range(3):
        client.post("/account/password", data={"current": "guess", "new": "a much longer secret",
                                               "confirm": "a much longer secret"})

    response = client.post("/account/password", data={"current": factories.PASSWORD, "new": "a much longer secret",
                                                       "confirm": "a much longer secret"})

    assert response.status_code == 429


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT_PER_ADDRESS": "2 per minute",
                                         "RATELIMIT_STORAGE_URI": "redis+unix:///nonexistent/redis.sock"}])
def test_given_redis_is_down_when_sign_ins_pass_the_limit_then_memory_still_limits(client, world, app_config):
    for _ in range(2):
        _sign_in(client, password="wrong", environ=ATTACKER)
    assert _sign_in(client, environ=ATTACKER).status_code == 429


@pytest.mark.parametrize("app_config", [{"API_LIMIT_PER_TOKEN": "2 per minute"}])
def test_the_api_is_limited_per_token_with_429_and_retry_after(client, world, db, app_config):
    from dashboard.tokens import create_token

    token = create_token(world.org_a, "orchestrator")
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        client.post("/api/v1/sync-batches", data="{}", headers=headers, content_type="application/json")

    response = client.post("/api/v1/sync-batches", data="{}", headers=headers, content_type="application/json")

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json()["error"]["status"] == 429


def test_given_an_admin_removed_from_their_organization_when_their_session_comes_back_then_it_has_ended(
        client, world, runner):
    _sign_in(client)
    assert _as_new_request(client.get, "/orgs/org-a").status_code == 200

    result = runner.invoke(args=["users", "remove-admin", "admin-a@example.org", "--org", "org-a"])

    assert result.exit_code == 0, result.output
    assert _as_new_request(client.get, "/orgs/org-a").status_code == 302
