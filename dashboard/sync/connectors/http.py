"""A generic JSON-over-HTTP accounting connector for real deployments (standard library only).

Each record is POSTed as JSON to the connector's `url` (with `volunteer_ref`, who
is owed the money, when the record has one). The record's source
reference travels as the `Idempotency-Key` header: after a timeout we cannot
know whether the voucher was booked, so the retry must be safe to book twice.

Settings: `url` (http or https, required) and `timeout` (seconds per socket
operation, default 10). The secret, when set, is sent as a bearer token and is
kept out of every message. The settings form sets the URL (`check_form`) and the
secret; the timeout is kept as saved.

The URL's host must be public (`dashboard.outbound`): the form refuses a URL that
resolves to a private address, and every connection resolves the host again,
checks each address and connects to a checked one; a refused address is a
permanent `permission_denied`. Proxies from the environment are not used: through
a proxy, the address reached could not be checked.
"""
from __future__ import annotations

import http.client
import json
import math
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timezone
from email.message import Message
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from flask_babel import gettext as _

from dashboard import outbound
from dashboard.sync.connectors.answers import json_object, redact, retry_after, status_line
from dashboard.sync.connectors.base import CheckedSettings, OutgoingRecord, PushResult
from dashboard.sync.errors import ERROR_CODES

DEFAULT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
MAX_URL_LENGTH = 500
SETTINGS_FIELDS = ("url",)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """urllib turns a redirected POST into a body-less GET, which would look booked without being so."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _VettedConnection:
    """Connects through `outbound.create_connection`: the host is resolved once, every address is checked, and
    the socket goes to a checked address. Everything else (the Host header, TLS with the name for SNI and the
    certificate check) is http.client's, which opens its socket through `_create_connection`."""

    def __init__(self, *args: Any, allow_private: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = partial(outbound.create_connection, allow_private=allow_private)


class _VettedHTTPConnection(_VettedConnection, http.client.HTTPConnection):
    pass


class _VettedHTTPSConnection(_VettedConnection, http.client.HTTPSConnection):
    pass


class _VettedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allow_private: bool) -> None:
        super().__init__()
        self.allow_private = allow_private

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_VettedHTTPConnection, req, allow_private=self.allow_private)


class _VettedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allow_private: bool) -> None:
        super().__init__()
        self.allow_private = allow_private

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_VettedHTTPSConnection, req, context=self._context, allow_private=self.allow_private)


class HttpAdapter:
    """Books a record by POSTing it as JSON; maps the HTTP answer onto the error vocabulary."""

    def __init__(self, settings: Mapping[str, Any], secret: str | None) -> None:
        self.url = _checked_url(settings.get("url"))
        self.timeout = _checked_timeout(settings.get("timeout", DEFAULT_TIMEOUT))
        self._secret = secret or None
        allow_private = outbound.private_allowed()
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), _RefuseRedirects,
            _VettedHTTPHandler(allow_private), _VettedHTTPSHandler(allow_private))

    def push(self, record: OutgoingRecord) -> PushResult:
        request = urllib.request.Request(self.url, data=_body(record), headers=self._headers(record), method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return _booked(response.read(MAX_RESPONSE_BYTES))
        except urllib.error.HTTPError as error:
            with error:
                code, message = _error_in(_error_body(error))
                return _rejected(error.code, error.headers, self._redacted(code), self._redacted(message))
        except (OSError, http.client.HTTPException) as error:
            return self._unreachable(error)

    def _headers(self, record: OutgoingRecord) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "Idempotency-Key": record.source_ref,
        }
        if self._secret:
            headers["Authorization"] = f"Bearer {self._secret}"
        return headers

    def _redacted(self, text: str | None) -> str | None:
        """The accounting system's text without our token, should it echo it back."""
        return text if text is None else redact(text, self._secret)

    def _unreachable(self, error: OSError | http.client.HTTPException) -> PushResult:
        """No HTTP answer: a timeout (the voucher may or may not be booked) or no connection at all."""
        reason = getattr(error, "reason", error)
        where = _without_credentials(self.url)
        if isinstance(reason, outbound.RefusedAddress):
            return PushResult.failure(
                "permission_denied", f"Refused to connect to {where}: {reason.describe()} "
                "Point the connector at the accounting system's public URL.", retryable=False)
        if isinstance(error, TimeoutError) or isinstance(reason, TimeoutError):
            return PushResult.failure(
                "timeout", f"No answer from {where} within {self.timeout:g} seconds", retryable=True)
        return PushResult.failure("system_unavailable", f"Could not reach {where}: {reason}", retryable=True)


def _body(record: OutgoingRecord) -> bytes:
    payload = {
        "source_ref": record.source_ref,
        "record_type": record.record_type,
        "amount_minor": record.amount_minor,
        "currency": record.currency,
        "approved_at": _iso_utc(record.approved_at),
        "volunteer": record.volunteer,
        "description": record.description,
    }
    if record.volunteer_ref is not None:
        payload["volunteer_ref"] = record.volunteer_ref
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _iso_utc(moment: datetime) -> str:
    """ISO-8601 with an offset; naive times are UTC, as the database stores them."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat()


def _booked(body: bytes) -> PushResult:
    """2xx: booked, with the accounting system's voucher id when the body names one."""
    payload = json_object(body)
    for key in ("id", "external_id"):
        value = payload.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return PushResult.success(str(value))
    return PushResult(ok=True)


def _rejected(status: int, headers: Message, code: str | None, message: str | None) -> PushResult:
    """An HTTP error status mapped onto the error vocabulary, keeping the body's code and message when given."""
    text = message or status_line(status)
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return PushResult.failure("rate_limited", text, retryable=True,
                                  retry_after=retry_after(headers.get("Retry-After")))
    if status == HTTPStatus.UNAUTHORIZED:
        return PushResult.failure("credentials_expired", text, retryable=False)
    if status == HTTPStatus.FORBIDDEN:
        return PushResult.failure("permission_denied", text, retryable=False)
    if 400 <= status < 500:
        if code in ERROR_CODES:
            return PushResult.failure(code, text, retryable=False)
        return PushResult.failure("validation_failed", f"{code}: {text}" if code else text, retryable=False)
    if status >= 500:
        return PushResult.failure("system_unavailable", text, retryable=True,
                                  retry_after=retry_after(headers.get("Retry-After")))
    return PushResult.failure(  # a 3xx: the only other status urllib raises for
        "unknown", f"{status_line(status)}: redirects are not followed, point the connector at the final URL",
        retryable=False)


def _error_in(body: bytes) -> tuple[str | None, str | None]:
    """The code and message of `{"error": {"code", "message"}}`, `{"code", "message"}` or `{"error": "..."}`."""
    payload = json_object(body)
    error = payload.get("error", payload)
    if not isinstance(error, dict):
        return None, _text(error)
    code, message = error.get("code"), error.get("message")
    return _text(code), _text(message)


def _text(value: Any) -> str | None:
    """A non-blank string, stripped; anything else reads as absent."""
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _error_body(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read(MAX_RESPONSE_BYTES)
    except (OSError, http.client.HTTPException):
        return b""


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def check_form(fields: Mapping[str, str], saved: Mapping[str, Any]) -> CheckedSettings:
    """The settings form's URL, with the other saved settings (the timeout) kept.

    Besides its form, the URL's host must be public now (it is checked again at every connection).
    """
    url = fields["url"]
    problem = url_problem(url)
    if problem is None and (refusal := outbound.url_refusal(url, outbound.private_allowed())) is not None:
        problem = _("The URL cannot be used: %(reason)s", reason=refusal.describe())
    return CheckedSettings({**saved, "url": url}, [("url", problem)] if problem else [])


def url_problem(url: Any) -> str | None:
    """Why `url` cannot be the accounting system's, or None. Only http(s): urllib would also open file: and ftp:."""
    if not isinstance(url, str) or not url.strip():
        return _("Enter the URL of the accounting system.")
    url = url.strip()
    malformed = _("Enter a URL that starts with http:// or https://, at most %(n)d characters.", n=MAX_URL_LENGTH)
    if len(url) > MAX_URL_LENGTH or any(c <= " " or c == "\x7f" for c in url):
        return malformed
    try:  # urlsplit refuses a bracket left open (http://[::1); .port a port that is not a number
        parts = urlsplit(url)
        hostname, _port = parts.hostname, parts.port
    except ValueError:
        return _("Enter a URL whose host and port can be read, such as https://ledger.example/api/vouchers.")
    if parts.scheme not in ("http", "https") or not hostname:
        return malformed
    return None


def _checked_url(url: Any) -> str:
    problem = url_problem(url)
    if problem:
        raise ValueError(problem)
    return url.strip()


def _checked_timeout(timeout: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (0 < timeout < math.inf):
        raise ValueError(f"The timeout must be a positive number of seconds, not {timeout!r}.")
    return float(timeout)
