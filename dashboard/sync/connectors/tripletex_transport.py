"""The Tripletex client's transport: the session token and the authenticated requests that use it.

Authentication: a session token from `PUT /token/session/:create` (the platform's consumer token and the
connector's employee token as query parameters, no auth header), sent as Basic auth with user `0`. A session
expires at midnight (Oslo time) at the start of its `expirationDate`: the client asks for tomorrow, renews
shortly before midnight, and once more when Tripletex answers 401 code 3000 anyway. Outbound connections
follow `dashboard.outbound`, as the HTTP connector's do; secrets are redacted from every failure's message.
"""
from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any
from urllib.parse import urlencode, urlsplit

from dashboard import outbound
from dashboard.sync.connectors.answers import json_object, redact
from dashboard.sync.connectors.base import PushResult
from dashboard.sync.connectors.tripletex_settings import CONSUMER_TOKEN_SETTING
from dashboard.sync.connectors.tripletex_wire import (
    OSLO, Answer, Failed, Unanswered, basic_auth, failure, json_with_decimals, midnight)

RENEW_BEFORE = timedelta(minutes=5)
"""A session is renewed this long before it expires, so no request is sent with a session about to lapse."""
MAX_RESPONSE_BYTES = 256 * 1024

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TripletexClient:
    """Requests to one Tripletex API under a session token it creates and renews; failures as PushResults."""

    def __init__(self, base_url: str, timeout: float, *, employee_token: str | None, consumer_token: str | None,
                 clock: Clock = utcnow) -> None:
        self.base_url = base_url
        parts = urlsplit(self.base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = parts.path
        self.timeout = timeout
        self._employee_token = employee_token or None
        self._consumer_token = consumer_token or None
        self._allow_private = outbound.private_allowed()
        self._clock = clock
        self._ssl = ssl.create_default_context() if self._https else None
        self._lock = threading.Lock()
        self._session: tuple[str, datetime] | None = None
        """The session token and when it expires."""

    def _call(self, method: str, path: str, query: Mapping[str, Any] | None = None) -> Answer:
        """A request whose failure ends the push (look-ups); 2xx answers only."""
        try:
            answer = self._request(method, path, query=query)
        except Unanswered as unanswered:
            raise Failed(self._unreachable(unanswered)) from None
        if answer.status >= 300:
            raise Failed(self._failure(answer))
        return answer

    def _request(self, method: str, path: str, query: Mapping[str, Any] | None = None,
                 body: dict[str, Any] | None = None) -> Answer:
        """An authenticated request; renews the session once when Tripletex says it has expired."""
        for renewed in (False, True):
            token = self._session_token(renew=renewed)
            answer = self._send(method, path, query, body, authorization=basic_auth(token))
            if answer.status == 401 and not renewed:
                continue
            return answer
        raise AssertionError("unreachable")

    def _session_token(self, renew: bool) -> str:
        with self._lock:
            now = self._clock()
            if not renew and self._session is not None and now < self._session[1] - RENEW_BEFORE:
                return self._session[0]
            if not self._consumer_token:
                raise Failed(PushResult.failure(
                    "credentials_expired", f"The platform has no Tripletex consumer token ({CONSUMER_TOKEN_SETTING}): "
                    "ask the platform operator to set it.", retryable=False))
            if not self._employee_token:
                raise Failed(PushResult.failure(
                    "credentials_expired", "The connector has no Tripletex employee token: enter it in the connector "
                    "settings.", retryable=False))
            expires_on = now.astimezone(OSLO).date() + timedelta(days=1)
            if now >= midnight(expires_on) - RENEW_BEFORE:  # a few minutes before midnight: ask for a day more
                expires_on += timedelta(days=1)
            try:
                answer = self._send("PUT", "/token/session/:create", {
                    "consumerToken": self._consumer_token, "employeeToken": self._employee_token,
                    "expirationDate": expires_on.isoformat()}, None, authorization=None)
            except Unanswered as unanswered:
                raise Failed(self._unreachable(unanswered)) from None
            value = answer.body.get("value")
            token = value.get("token") if isinstance(value, dict) else None
            if answer.status >= 300 or not isinstance(token, str) or not token:
                raise Failed(self._failure(answer, session=True))
            self._session = (token, midnight(expires_on))
            return token

    def _send(self, method: str, path: str, query: Mapping[str, Any] | None, body: dict[str, Any] | None,
              authorization: str | None) -> Answer:
        target = self._path + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            data = json_with_decimals(body)
            headers["Content-Type"] = "application/json; charset=utf-8"
        connection = self._connection()
        sent = False
        try:
            connection.request(method, target, body=data, headers=headers)
            sent = True
            response = connection.getresponse()
            raw = response.read(MAX_RESPONSE_BYTES)
            return Answer(response.status, response.headers, json_object(raw))
        except TimeoutError:
            raise Unanswered("timeout", f"No answer from Tripletex within {self.timeout:g} seconds") from None
        except outbound.RefusedAddress as refused:
            raise Unanswered("refused", refused.describe()) from None
        except (OSError, http.client.HTTPException) as error:
            if sent:
                raise Unanswered("timeout", f"Tripletex closed the connection without answering ({error})") from None
            raise Unanswered("unreachable", f"Could not reach Tripletex at {self._where()}: {error}") from None
        finally:
            connection.close()

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=self._ssl)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        # Every connection goes to a checked address of the host (dashboard.outbound), as the HTTP connector's.
        connection._create_connection = partial(  # type: ignore[attr-defined]
            outbound.create_connection, allow_private=self._allow_private)
        return connection

    def _where(self) -> str:
        return f"{'https' if self._https else 'http'}://{self._host}{f':{self._port}' if self._port else ''}"

    def _unreachable(self, unanswered: Unanswered) -> PushResult:
        message = self._redacted(str(unanswered))
        if unanswered.kind == "refused":
            return PushResult.failure("permission_denied", f"Refused to connect to {self._where()}: {message} "
                                      "Point the connector at Tripletex's public URL.", retryable=False)
        if unanswered.kind == "timeout":
            return PushResult.failure("timeout", message, retryable=True)
        return PushResult.failure("system_unavailable", message, retryable=True)

    def _failure(self, answer: Answer, session: bool = False) -> PushResult:
        result = failure(answer, session)
        return replace(result, message=self._redacted(result.message or ""))

    def _redacted(self, text: str) -> str:
        return redact(text, self._employee_token, self._consumer_token)
