"""Fiken OAuth2 connections: expired or rejected access tokens are refreshed under the client's lock, the rotated
tokens are committed before use, a spent refresh token means "reconnect", and two workers never refresh twice."""
from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Iterator

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

from dashboard.extensions import db
from dashboard.models import Connector, SyncAttempt, SyncRecord, utcnow
from dashboard.sync import orchestrator
from dashboard.sync.connectors import fiken_oauth as fiken
from dashboard.sync.connectors.fiken import FikenAdapter
from dashboard.sync.connectors.fiken_oauth import refresh_access_token
from tests import factories
from tests.fakes.fiken import FikenFake
from tests.integration.test_fiken import record, settings

TTL = 3600.0


@pytest.fixture()
def app_config() -> dict:
    return {"ALLOW_PRIVATE_OUTBOUND_URLS": True, "FIKEN_CLIENT_ID": "fake-client",
            "FIKEN_CLIENT_SECRET": "fake-client-secret"}


@pytest.fixture()
def fake(app) -> Iterator[FikenFake]:  # type: ignore[no-untyped-def]
    with FikenFake(client_id="fake-client", client_secret="fake-client-secret") as server:
        app.config["FIKEN_TOKEN_URL"] = server.token_url
        yield server


def oauth_secret(access: str, refresh: str, expires_at: float | None) -> str:
    return json.dumps({"access_token": access, "refresh_token": refresh, "expires_at": expires_at})


def expired_connection(fake: FikenFake) -> tuple[str, str, str]:
    """Tokens whose access token has expired at Fiken and by its stored expiry: (secret, access, refresh)."""
    access, refresh = fake.oauth_tokens(ttl=TTL)
    fake.advance(TTL + 1)
    return oauth_secret(access, refresh, time.time() - 1), access, refresh


def rejected_connection(fake: FikenFake) -> tuple[str, str, str]:
    """Tokens whose stored expiry is hours away but that Fiken no longer accepts (401)."""
    access, refresh = fake.oauth_tokens(ttl=TTL)
    fake.advance(TTL + 1)
    return oauth_secret(access, refresh, time.time() + TTL), access, refresh


def fiken_connector(world, fake: FikenFake, secret: str, records: int = 1) -> Connector:  # type: ignore[no-untyped-def]
    connector = factories.connector(world.org_a, name="Fiken", provider="fiken", settings=settings(fake),
                                    secret=secret)
    for i in range(records):
        factories.record(connector, source_ref=f"EXP-{900 + i}", approved_at=utcnow() - timedelta(minutes=i))
    db.session.commit()
    return connector


def committed_secret(connector_id: int) -> dict:
    """The connector's secret as another process would read it: a fresh session sees only what is committed."""
    with so.Session(db.engine) as fresh:
        return json.loads(fresh.scalar(sa.select(Connector.secret).where(Connector.id == connector_id)))


def test_an_expired_access_token_is_refreshed_once_and_the_rotated_tokens_are_committed_before_use(
        world, fake, monkeypatch):
    """Given an OAuth2 connection whose access token has expired, when it syncs, the adapter refreshes once, and the
    rotated refresh token is committed (read back in a fresh session) before Fiken sees the new access token."""
    secret, access, refresh = expired_connection(fake)
    connector = fiken_connector(world, fake, secret, records=2)
    sent: list[tuple[str, dict]] = []
    send = FikenAdapter._send

    def spy(self, method, target, body, headers):  # type: ignore[no-untyped-def]
        sent.append((headers["Authorization"].removeprefix("Bearer "), committed_secret(connector.id)))
        return send(self, method, target, body, headers)

    monkeypatch.setattr(FikenAdapter, "_send", spy)
    batch = orchestrator.sync_connector(connector.id)

    assert batch is not None and (batch.attempt_count, batch.failure_count) == (2, 0)
    stored = committed_secret(connector.id)
    assert stored["refresh_token"] != refresh and stored["refresh_token"] in fake.refresh_tokens
    assert stored["access_token"] != access and stored["expires_at"] > time.time() + 23 * 3600
    assert len(fake.access_tokens) == 2  # the original and one refresh
    assert [token for token, _ in sent] == [stored["access_token"]] * 2  # the expired token was never sent
    assert all(seen == stored for _, seen in sent)  # committed before the first request that used it
    assert fake.entries_naming("[EXP-900]") == 1 and fake.entries_naming("[EXP-901]") == 1


def test_a_401_refreshes_once_then_pushes(world, fake):
    """Given tokens that look valid but that Fiken rejects, the push is answered 401, the adapter refreshes once
    and repeats the push with the new access token."""
    secret, access, refresh = rejected_connection(fake)
    connector = fiken_connector(world, fake, secret)
    batch = orchestrator.sync_connector(connector.id)
    assert batch is not None and batch.failure_count == 0
    assert len(fake.access_tokens) == 2 and fake.requests == 2  # the 401, then the push
    stored = committed_secret(connector.id)
    assert stored["refresh_token"] in fake.refresh_tokens and refresh not in fake.refresh_tokens
    assert fake.entries_naming("[EXP-900]") == 1


def test_a_401_after_a_refresh_is_not_refreshed_again(world, fake):
    """Given Fiken rejects even the refreshed token, the push fails as credentials_expired after one refresh."""
    secret, _access, _refresh = rejected_connection(fake)
    connector = fiken_connector(world, fake, secret)
    fake.fail_next(401, "Unauthorized", shape="text", method="POST")  # the fresh token is refused too
    orchestrator.sync_connector(connector.id)
    db.session.expire_all()
    [row] = db.session.scalars(sa.select(SyncRecord)).all()
    assert row.last_error_code == "credentials_expired"
    assert len(fake.access_tokens) == 2 and fake.entries == []


def test_a_spent_refresh_token_is_credentials_expired_telling_the_admin_to_reconnect(world, fake):
    """Given the stored refresh token was spent elsewhere (Fiken answers invalid_grant), the push fails as
    credentials_expired with a message to reconnect Fiken, naming no token; nothing is booked."""
    secret, access, refresh = expired_connection(fake)
    refresh_access_token(refresh, fake.client_id, fake.client_secret, token_url=fake.token_url)
    connector = fiken_connector(world, fake, secret)
    batch = orchestrator.sync_connector(connector.id)
    assert batch is not None and batch.failure_count == 1 and batch.stopped_reason == "credentials_expired"
    db.session.expire_all()
    [row] = db.session.scalars(sa.select(SyncRecord)).all()
    assert (row.status, row.last_error_code) == ("failed", "credentials_expired")
    assert "reconnect Fiken" in row.last_error_message and "invalid_grant" in row.last_error_message
    for text in (row.last_error_message, *db.session.scalars(sa.select(SyncAttempt.error_message))):
        assert access not in text and refresh not in text
    assert committed_secret(connector.id)["refresh_token"] == refresh  # nothing new to store
    assert fake.entries == [] and fake.requests == 0


@pytest.mark.parametrize("connection", [expired_connection, rejected_connection], ids=["expired", "rejected"])
def test_two_workers_never_refresh_with_the_same_refresh_token(app, world, fake, connection):
    """Given two workers (threads, each with its own adapter built the orchestrator's way from the same stored
    tokens) pushing at once, one refreshes and the other re-reads the stored tokens and uses the new access
    token: Fiken would answer invalid_grant to a second refresh with the spent token, and every push succeeds."""
    secret, _access, refresh = connection(fake)
    connector_id = fiken_connector(world, fake, secret, records=0).id  # the threads must not touch this session
    both_built = threading.Barrier(2)
    results: list = []
    errors: list[BaseException] = []

    def work(prefix: str) -> None:
        try:
            with app.app_context():
                adapter = orchestrator.connector_adapter(db.session.get(Connector, connector_id))
                db.session.rollback()
                both_built.wait(10)
                results.extend(adapter.push(record(ref=f"{prefix}-{i}")) for i in range(3))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [threading.Thread(target=work, args=(p,)) for p in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(results) == 6 and all(r.ok for r in results), results
    assert len(fake.access_tokens) == 2  # exactly one refresh
    stored = committed_secret(connector_id)
    assert stored["refresh_token"] in fake.refresh_tokens and refresh not in fake.refresh_tokens
    assert (fake.max_concurrent, fake.overlaps, len(fake.entries)) == (1, 0, 6)


def test_two_syncs_in_a_row_refresh_only_when_needed(world, fake):
    """Given a connection refreshed by one sync, the next sync reads the rotated tokens and refreshes nothing."""
    secret, _access, _refresh = expired_connection(fake)
    connector = fiken_connector(world, fake, secret)
    assert orchestrator.sync_connector(connector.id).failure_count == 0
    factories.record(db.session.get(Connector, connector.id), source_ref="EXP-999")
    db.session.commit()
    assert orchestrator.sync_connector(connector.id).failure_count == 0
    assert len(fake.access_tokens) == 2 and len(fake.entries) == 2


def test_tokens_that_could_not_be_stored_are_not_used(app, fake):
    """Given the store fails after Fiken rotated the tokens, the push fails (retryable) without using them."""
    secret, access, refresh = expired_connection(fake)

    def broken_store(new_secret: str) -> None:
        raise RuntimeError(f"disk full while writing {new_secret}")

    adapter = FikenAdapter(settings(fake), secret, store_secret=broken_store, load_secret=lambda: secret)
    result = adapter.push(record())
    assert (result.ok, result.error_code, result.retryable) == (False, "unknown", True)
    assert "could not be saved" in result.message and "reconnect Fiken" in result.message
    assert fake.requests == 0 and fake.entries == []
    assert access not in result.message and refresh not in result.message


def test_without_a_store_an_expired_token_is_not_refreshed(app, fake):
    """Given an adapter that cannot store tokens (a connection check), an expired token is credentials_expired
    and the refresh token is not spent."""
    secret, _access, refresh = expired_connection(fake)
    [failure] = FikenAdapter(settings(fake), secret).check_connection()
    assert failure.error_code == "credentials_expired" and "reconnect Fiken" in failure.message
    assert refresh in fake.refresh_tokens and fake.requests == 0


def test_no_token_appears_in_a_message(app, fake):
    """Given Fiken echoes the tokens in an error body, the message redacts them, and the whole secret too."""
    access, refresh = fake.oauth_tokens(ttl=TTL)
    secret = oauth_secret(access, refresh, time.time() + TTL)
    fake.fail_next(400, f"Bad request with {access} and {refresh} and {secret}", shape="text")
    message = FikenAdapter(settings(fake), secret).push(record()).message
    assert access not in message and refresh not in message and secret not in message
    assert message.count("[redacted]") == 3


def test_the_secret_tells_a_personal_token_from_oauth_tokens():
    assert fiken.oauth_tokens("pt-abc") is None
    tokens = fiken.oauth_tokens(oauth_secret("at-1", "rt-1", 100.0))
    assert tokens is not None and tokens.expiring(41.0) and not tokens.expiring(39.0)
    assert "at-1" not in repr(tokens) and "rt-1" not in repr(tokens)
    assert json.loads(tokens.secret()) == {"access_token": "at-1", "refresh_token": "rt-1", "expires_at": 100.0}
    with pytest.raises(ValueError, match="access_token and refresh_token") as raised:
        fiken.oauth_tokens('{"access_token": "at-secret"}')
    assert "at-secret" not in str(raised.value)
