"""The JSON-over-HTTP adapter against a real local HTTP server (pytest-httpserver), private addresses allowed."""
from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dashboard.sync.connectors import adapter_for
from dashboard.sync.connectors.base import OutgoingRecord
from dashboard.sync.connectors.http import HttpAdapter

SECRET = "tok-5f2c9e1b7a"
PATH = "/vouchers"


@pytest.fixture()
def app_config() -> dict:
    return {"ALLOW_PRIVATE_OUTBOUND_URLS": True}  # the test server listens on 127.0.0.1


@pytest.fixture(autouse=True)
def _private_addresses_allowed(app):  # type: ignore[no-untyped-def]
    """Adapters are built in the app, as the orchestrator builds them, so they read the setting."""


def record(ref: str = "EXP-1001", attempt: int = 1) -> OutgoingRecord:
    return OutgoingRecord(source_ref=ref, record_type="expense_claim", amount_minor=45_000, currency="NOK",
                          approved_at=datetime(2026, 3, 4, 10, 15), volunteer="Kari Nordmann",
                          description="Togbillett Oslo–Bergen", attempt_number=attempt)


def adapter(httpserver: HTTPServer, secret: str | None = SECRET, timeout: float = 2) -> HttpAdapter:
    return HttpAdapter({"url": httpserver.url_for(PATH), "timeout": timeout}, secret)


def test_2xx_is_booked_with_the_voucher_id(httpserver: HTTPServer):
    """Given the system answers 201 with an id, when a record is pushed, then it is ok with that external id."""
    httpserver.expect_request(PATH, method="POST").respond_with_json({"id": "V-2026-0042"}, status=201)
    result = adapter(httpserver).push(record())
    assert result.ok and result.external_id == "V-2026-0042"


def test_2xx_reads_an_external_id_field(httpserver: HTTPServer):
    """Given the body names the id as external_id, when a record is pushed, then that is the external id."""
    httpserver.expect_request(PATH).respond_with_json({"external_id": 98765})
    assert adapter(httpserver).push(record()).external_id == "98765"


def test_2xx_without_an_id_is_still_booked(httpserver: HTTPServer):
    """Given a 204 with no body, when a record is pushed, then it is ok without an external id."""
    httpserver.expect_request(PATH).respond_with_data("", status=204)
    result = adapter(httpserver).push(record())
    assert result.ok and result.external_id is None


def test_the_record_is_posted_as_json(httpserver: HTTPServer):
    """Given a record, when it is pushed, then its fields arrive as JSON with approved_at in ISO-8601 UTC."""
    httpserver.expect_request(PATH, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}, json={
        "source_ref": "EXP-1001", "record_type": "expense_claim", "amount_minor": 45_000, "currency": "NOK",
        "approved_at": "2026-03-04T10:15:00+00:00", "volunteer": "Kari Nordmann",
        "description": "Togbillett Oslo–Bergen",
    }).respond_with_json({"id": "V-1"})
    assert adapter(httpserver).push(record()).ok


def test_bearer_token_and_idempotency_key_are_sent(httpserver: HTTPServer):
    """Given a secret, when a record is pushed, then the bearer token and the source reference as key are sent."""
    httpserver.expect_request(PATH, headers={"Authorization": f"Bearer {SECRET}", "Idempotency-Key": "EXP-1001"}) \
        .respond_with_json({"id": "V-1"})
    assert adapter(httpserver).push(record()).ok


def test_no_secret_sends_no_authorization_header(httpserver: HTTPServer):
    """Given no secret, when a record is pushed, then no Authorization header is sent."""
    httpserver.expect_request(PATH).respond_with_json({"id": "V-1"})
    adapter(httpserver, secret=None).push(record())
    request, _ = httpserver.log[0]
    assert "Authorization" not in request.headers


def test_a_retry_sends_the_same_idempotency_key(httpserver: HTTPServer):
    """Given a record pushed twice as attempts 1 and 2, when both arrive, then they carry the same key."""
    httpserver.expect_request(PATH).respond_with_json({"id": "V-1"})
    http_adapter = adapter(httpserver)
    http_adapter.push(record(attempt=1))
    http_adapter.push(record(attempt=2))
    assert [request.headers["Idempotency-Key"] for request, _ in httpserver.log] == ["EXP-1001", "EXP-1001"]


def test_429_is_rate_limited_with_retry_after_seconds(httpserver: HTTPServer):
    """Given a 429 with Retry-After: 45, when a record is pushed, then it is rate_limited, retryable, after 45 s."""
    httpserver.expect_request(PATH).respond_with_data("", status=429, headers={"Retry-After": "45"})
    result = adapter(httpserver).push(record())
    assert (result.error_code, result.retryable, result.retry_after) == ("rate_limited", True, 45)


def test_429_reads_retry_after_as_an_http_date(httpserver: HTTPServer):
    """Given a 429 with Retry-After as a date two minutes ahead, when a record is pushed, then it waits ~120 s."""
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=120), usegmt=True)
    httpserver.expect_request(PATH).respond_with_data("", status=429, headers={"Retry-After": when})
    retry_after = adapter(httpserver).push(record()).retry_after
    assert retry_after is not None and 110 <= retry_after <= 121


def test_401_is_credentials_expired(httpserver: HTTPServer):
    """Given a 401, when a record is pushed, then it fails with credentials_expired, not retryable."""
    httpserver.expect_request(PATH).respond_with_json({"message": "Token expired"}, status=401)
    result = adapter(httpserver).push(record())
    assert (result.ok, result.error_code, result.retryable, result.message) == (
        False, "credentials_expired", False, "Token expired")


def test_403_is_permission_denied(httpserver: HTTPServer):
    """Given a 403 without a body, when a record is pushed, then it fails with permission_denied and the status."""
    httpserver.expect_request(PATH).respond_with_data("", status=403)
    result = adapter(httpserver).push(record())
    assert (result.error_code, result.retryable, result.message) == ("permission_denied", False, "HTTP 403 Forbidden")


def test_422_keeps_the_bodys_error_code_and_message(httpserver: HTTPServer):
    """Given a 422 whose body says period_locked, when a record is pushed, then that code and message are kept."""
    httpserver.expect_request(PATH).respond_with_json(
        {"error": {"code": "period_locked", "message": "Period 2026-03 is locked for posting"}}, status=422)
    result = adapter(httpserver).push(record())
    assert (result.error_code, result.retryable, result.message) == (
        "period_locked", False, "Period 2026-03 is locked for posting")


def test_4xx_reads_a_top_level_code(httpserver: HTTPServer):
    """Given a 409 with a top-level duplicate_voucher code, when a record is pushed, then that code is kept."""
    httpserver.expect_request(PATH).respond_with_json(
        {"code": "duplicate_voucher", "message": "Voucher EXP-1001 exists"}, status=409)
    result = adapter(httpserver).push(record())
    assert (result.error_code, result.retryable) == ("duplicate_voucher", False)


def test_4xx_with_a_code_outside_the_vocabulary_is_validation_failed(httpserver: HTTPServer):
    """Given a 400 with the provider's own code, when a record is pushed, then it is validation_failed naming it."""
    httpserver.expect_request(PATH).respond_with_json(
        {"error": {"code": "voucher_date_invalid", "message": "Voucher date is outside the fiscal year"}}, status=400)
    result = adapter(httpserver).push(record())
    assert (result.error_code, result.retryable, result.message) == (
        "validation_failed", False, "voucher_date_invalid: Voucher date is outside the fiscal year")


def test_4xx_without_json_is_validation_failed_with_the_status(httpserver: HTTPServer):
    """Given a 400 with an HTML body, when a record is pushed, then it is validation_failed with the status line."""
    httpserver.expect_request(PATH).respond_with_data("<h1>Bad</h1>", status=400, content_type="text/html")
    result = adapter(httpserver).push(record())
    assert (result.error_code, result.message) == ("validation_failed", "HTTP 400 Bad Request")


def test_5xx_is_unavailable_and_retryable(httpserver: HTTPServer):
    """Given a 500, when a record is pushed, then it fails with system_unavailable, retryable."""
    httpserver.expect_request(PATH).respond_with_data("", status=500)
    result = adapter(httpserver).push(record())
    assert (result.ok, result.error_code, result.retryable) == (False, "system_unavailable", True)


def test_503_honours_retry_after(httpserver: HTTPServer):
    """Given a 503 with Retry-After: 120, when a record is pushed, then the result asks to wait 120 s."""
    httpserver.expect_request(PATH).respond_with_data("", status=503, headers={"Retry-After": "120"})
    assert adapter(httpserver).push(record()).retry_after == 120


def test_a_slow_answer_is_a_retryable_timeout(httpserver: HTTPServer):
    """Given a server slower than the adapter's 0.2 s timeout, when a record is pushed, then it is a timeout."""
    def slow(request: Request) -> Response:
        time.sleep(1)
        return Response('{"id": "V-late"}', content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(slow)
    started = time.monotonic()
    result = adapter(httpserver, timeout=0.2).push(record())
    assert (result.ok, result.error_code, result.retryable) == (False, "timeout", True)
    assert time.monotonic() - started < 0.9


def test_a_refused_connection_is_unavailable_and_retryable():
    """Given nothing listens on the port, when a record is pushed, then it fails with system_unavailable, retryable."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = HttpAdapter({"url": f"http://127.0.0.1:{port}/vouchers"}, SECRET).push(record())
    assert (result.ok, result.error_code, result.retryable) == (False, "system_unavailable", True)


def test_the_secret_never_appears_in_a_message(httpserver: HTTPServer):
    """Given a server that echoes the token in its error, when a record is pushed, then the message hides it."""
    httpserver.expect_request(PATH).respond_with_json({"message": f"Token {SECRET} has expired"}, status=401)
    message = adapter(httpserver).push(record()).message
    assert message is not None and SECRET not in message and "[redacted]" in message


def test_a_redirect_is_not_followed(httpserver: HTTPServer):
    """Given a 302, when a record is pushed, then it fails and no body-less GET is sent to the new location."""
    httpserver.expect_request(PATH).respond_with_data("", status=302, headers={"Location": "/elsewhere"})
    result = adapter(httpserver).push(record())
    assert not result.ok and result.retryable is False
    assert [request.path for request, _ in httpserver.log] == [PATH]


@pytest.mark.parametrize("settings", [
    {},
    {"url": ""},
    {"url": "file:///etc/passwd"},
    {"url": "https://"},
    {"url": "https://regnskap.example/api", "timeout": 0},
    {"url": "https://regnskap.example/api", "timeout": "10"},
])
def test_unusable_settings_are_refused_at_construction(settings):
    """Given settings without a usable http(s) URL or timeout, when the adapter is built, then it raises ValueError."""
    with pytest.raises(ValueError):
        HttpAdapter(settings, SECRET)


def test_adapter_for_builds_the_http_adapter():
    """Given the http provider, when its adapter is built, then it is an HttpAdapter with the default timeout."""
    built = adapter_for("http", {"url": "https://regnskap.example/api"}, SECRET)
    assert isinstance(built, HttpAdapter) and built.timeout == 10
