"""No requests to private addresses: the connector settings form refuses them, and so does every connection."""
from __future__ import annotations

import socket
import ssl
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from dashboard.extensions import db
from dashboard.models import Connector, SyncRecord, utcnow
from dashboard.outbound import RefusedAddress
from dashboard.sync import orchestrator
from dashboard.sync.connectors.base import OutgoingRecord
from dashboard.sync.connectors.http import HttpAdapter, _VettedHTTPSConnection
from tests import factories
from tests.status_factories import HTMX

ALLOWED = {"ALLOW_PRIVATE_OUTBOUND_URLS": True}


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> list[str]:
    """Resolve the names in `answers` to their address; other names as the system does. Returns the names asked."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def record() -> OutgoingRecord:
    return OutgoingRecord(source_ref="EXP-1001", record_type="expense_claim", amount_minor=45_000, currency="NOK",
                          approved_at=utcnow())


@pytest.fixture()
def http_connector(world) -> Connector:  # type: ignore[no-untyped-def]
    connector = factories.connector(world.org_a, name="Ledger", provider="http",
                                    settings={"url": "https://ledger.example/api"})
    db.session.commit()
    return connector


def saved_url(connector: Connector) -> str:
    db.session.expire_all()
    return db.session.get(Connector, connector.id).settings["url"]


# ---- when the settings are saved ----

@pytest.mark.parametrize("url, message", [
    ("http://127.0.0.1/vouchers", "127.0.0.1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is the cloud metadata address"),
    ("http://[::1]/", "::1 is a loopback address"),
    ("http://2130706433/", "2130706433 (127.0.0.1) is a loopback address"),
    ("http://10.0.0.5:8080/api", "10.0.0.5 is a private address"),
])
def test_the_settings_form_refuses_a_non_public_address(client, world, login, http_connector, url, message):
    """Given the setting off, when an admin saves a URL on a non-public address, the form answers 422 naming
    the problem, and the URL is not saved."""
    login(world.admin_a)
    for headers in ({}, HTMX):
        response = client.post(f"/orgs/org-a/integration/connectors/{http_connector.id}/settings",
                               data={"enabled": "1", "url": url}, headers=headers)
        html = response.get_data(as_text=True)
        assert response.status_code == 422
        assert message in html and "only public internet addresses can be reached" in html
        assert "error-summary" in html and 'aria-invalid="true"' in html
    assert saved_url(http_connector) == "https://ledger.example/api"


def test_the_settings_form_refuses_a_name_resolving_to_a_private_address(client, world, login, http_connector,
                                                                          monkeypatch):
    fake_dns(monkeypatch, {"ledger.internal": "192.168.10.20"})
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/integration/connectors/{http_connector.id}/settings",
                           data={"enabled": "1", "url": "https://ledger.internal/api"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "ledger.internal resolves to a private address" in html and "192.168.10.20" not in html


@pytest.mark.parametrize("url", ["http://[::1", "http://ledger.example:port/", "http://ledger example/"])
def test_the_settings_form_answers_a_malformed_url_with_a_form_error(client, world, login, http_connector, url):
    """Given a URL whose host or port cannot be read, when it is saved, the form says so (it used to be a 500)."""
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/integration/connectors/{http_connector.id}/settings",
                           data={"enabled": "1", "url": url})
    assert response.status_code == 422
    assert "error-summary" in response.get_data(as_text=True)
    assert saved_url(http_connector) == "https://ledger.example/api"


@pytest.mark.parametrize("app_config", [ALLOWED])
def test_with_the_setting_on_the_form_saves_a_local_url(client, world, login, http_connector):
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/integration/connectors/{http_connector.id}/settings",
                           data={"enabled": "1", "url": "http://127.0.0.1:8080/vouchers"})
    assert response.status_code == 302
    assert saved_url(http_connector) == "http://127.0.0.1:8080/vouchers"


# ---- when connecting ----

def test_the_adapter_refuses_at_push_time_when_dns_answers_a_private_address(app, httpserver: HTTPServer,
                                                                            monkeypatch):
    """Given a name that resolves to the local test server's address, when a record is pushed with the setting
    off, nothing is sent and the push fails for good with permission_denied and a clear message."""
    httpserver.expect_request("/vouchers").respond_with_json({"id": "V-1"})
    fake_dns(monkeypatch, {"ledger.test": "127.0.0.1"})
    adapter = HttpAdapter({"url": f"http://ledger.test:{httpserver.port}/vouchers"}, "secret")

    result = adapter.push(record())

    assert (result.ok, result.error_code, result.retryable) == (False, "permission_denied", False)
    assert result.message == (
        f"Refused to connect to http://ledger.test:{httpserver.port}: ledger.test resolves to a loopback address; "
        "only public internet addresses can be reached. Point the connector at the accounting system's public URL.")
    assert httpserver.log == []


def test_the_adapter_refuses_a_literal_private_address(app, httpserver: HTTPServer):
    httpserver.expect_request("/vouchers").respond_with_json({"id": "V-1"})
    result = HttpAdapter({"url": httpserver.url_for("/vouchers")}, None).push(record())
    assert (result.error_code, result.retryable) == ("permission_denied", False)
    assert httpserver.log == []


def test_a_sync_stops_when_the_saved_name_now_resolves_to_a_private_address(world, monkeypatch):
    """Given a URL saved while its name was public, when the name resolves to a private address at sync time,
    the batch stops at the first record with the connector-level permission_denied."""
    connector = factories.connector(world.org_a, name="Ledger", provider="http",
                                    settings={"url": "https://ledger.example/api"})
    for minutes in (1, 2):
        factories.record(connector, approved_at=utcnow() - timedelta(hours=1, minutes=minutes))
    db.session.commit()
    fake_dns(monkeypatch, {"ledger.example": "10.20.30.40"})

    batch = orchestrator.sync_connector(connector.id)

    assert batch is not None and batch.stopped_reason == "permission_denied" and batch.attempt_count == 1
    failed = db.session.query(SyncRecord).filter_by(connector_id=connector.id, last_error_code="permission_denied")
    assert failed.count() == 1


@pytest.mark.parametrize("app_config", [ALLOWED])
def test_with_the_setting_on_the_checked_address_is_reached_under_the_name(app, httpserver: HTTPServer,
                                                                           monkeypatch):
    """Given the setting on and a name resolving to the local server, the request goes to the checked address
    once resolved, and still names the host in its Host header."""
    httpserver.expect_request("/vouchers").respond_with_json({"id": "V-7"})
    asked = fake_dns(monkeypatch, {"ledger.test": "127.0.0.1"})

    result = HttpAdapter({"url": f"http://ledger.test:{httpserver.port}/vouchers"}, None).push(record())

    assert result.ok and result.external_id == "V-7"
    assert asked == ["ledger.test"]
    [(request, _response)] = httpserver.log
    assert request.headers["Host"] == f"ledger.test:{httpserver.port}"


class RecordingContext(ssl.SSLContext):
    """Records the name TLS would send as SNI and check the certificate against, instead of a handshake."""

    server_hostname: str | None = None

    def wrap_socket(self, sock, server_hostname=None, **kwargs):  # type: ignore[no-untyped-def, override]
        self.server_hostname = server_hostname
        return sock


@pytest.mark.parametrize("allow_private", [True, False])
def test_https_connects_to_the_checked_address_with_the_name_for_tls(monkeypatch, allow_private):
    fake_dns(monkeypatch, {"ledger.test": "127.0.0.1"})
    context = RecordingContext(ssl.PROTOCOL_TLS_CLIENT)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        connection = _VettedHTTPSConnection("ledger.test", listener.getsockname()[1], context=context,
                                            allow_private=allow_private)
        if not allow_private:
            with pytest.raises(RefusedAddress):
                connection.connect()
            assert context.server_hostname is None
            return
        connection.connect()
        try:
            assert connection.sock.getpeername()[0] == "127.0.0.1"
            assert context.server_hostname == "ledger.test"
        finally:
            connection.close()
