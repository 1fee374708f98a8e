"""Fiken OAuth2: the connector secret's two forms, and refreshing an access token at Fiken's token endpoint.

The connector's write-only secret is either a personal API token (a bearer token that does not expire) or,
for an OAuth2 connection, a JSON object `{"access_token": …, "refresh_token": …, "expires_at": <Unix seconds
or null>}`: a secret that parses as a JSON object with both tokens is an OAuth2 connection (a personal API
token is never JSON); `oauth_tokens` tells them apart.

`refresh_access_token` asks the token endpoint (the platform's OAuth client: settings `FIKEN_CLIENT_ID`,
`FIKEN_CLIENT_SECRET`, `FIKEN_TOKEN_URL`) for new tokens. Refresh tokens rotate (the old one is then
`invalid_grant`, raised as TokenRefreshFailed `credentials_expired`), so both new tokens are stored before
either is used; when and under which lock a refresh happens is the client's (`fiken_client`).
"""
from __future__ import annotations

import base64
import http.client
import json
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from urllib.parse import urlencode, urlsplit

from dashboard import outbound
from dashboard.sync.connectors.fiken_settings import DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES
from dashboard.sync.connectors.answers import status_line

DEFAULT_TOKEN_URL = "https://fiken.no/oauth/token"
CLIENT_ID_SETTING, CLIENT_SECRET_SETTING = "FIKEN_CLIENT_ID", "FIKEN_CLIENT_SECRET"
TOKEN_URL_SETTING = "FIKEN_TOKEN_URL"
EXPIRY_MARGIN = 60.0
"""Seconds before its expiry that an OAuth2 access token is refreshed rather than used."""


@dataclass(frozen=True)
class Tokens:
    """What the token endpoint gave: store both tokens (the refresh token may have rotated) before using either."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: float | None = None


@dataclass(frozen=True)
class OAuthTokens:
    """An OAuth2 connection's secret: its tokens, and when the access token expires (Unix seconds, or None)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float | None = None

    def expiring(self, now: float) -> bool:
        """True when the access token has expired or expires within EXPIRY_MARGIN."""
        return self.expires_at is not None and self.expires_at - EXPIRY_MARGIN <= now

    def secret(self) -> str:
        """The connector's secret for these tokens."""
        return json.dumps({"access_token": self.access_token, "refresh_token": self.refresh_token,
                           "expires_at": self.expires_at})


def oauth_tokens(secret: str) -> OAuthTokens | None:
    """The OAuth2 tokens a connector's secret holds; None for a personal API token.

    Raises ValueError for a JSON object that is not an OAuth2 token document (never naming its content).
    """
    if not secret.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(secret)
    except ValueError:
        raise ValueError("The Fiken secret looks like an OAuth2 token document but is not valid JSON.") from None
    access, refresh = document.get("access_token"), document.get("refresh_token")
    expires = document.get("expires_at")
    if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh) \
            or isinstance(expires, bool) or not isinstance(expires, (int, float, type(None))):
        raise ValueError("A Fiken OAuth2 secret needs access_token and refresh_token (strings) and expires_at "
                         "(Unix seconds, or null).")
    return OAuthTokens(access, refresh, float(expires) if expires is not None else None)


class TokenRefreshFailed(Exception):
    """The token endpoint did not give new tokens: `code` is an error code of the vocabulary."""

    def __init__(self, code: str, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.code, self.message, self.retryable = code, message, retryable


def refresh_access_token(refresh_token: str, client_id: str, client_secret: str, *,
                         token_url: str = DEFAULT_TOKEN_URL, timeout: float = DEFAULT_TIMEOUT) -> Tokens:
    """New tokens from Fiken's token endpoint. The refresh token may rotate: store both before using either.

    Raises TokenRefreshFailed: `credentials_expired` ("reconnect") on invalid_grant, or any 400/401;
    `system_unavailable` or `timeout` when the endpoint is down or slow.
    """
    parts = urlsplit(token_url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=timeout)
    connection._create_connection = partial(  # type: ignore[attr-defined]
        outbound.create_connection, allow_private=outbound.private_allowed())
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    body = urlencode({"grant_type": "refresh_token", "refresh_token": refresh_token}).encode()
    try:
        connection.request("POST", parts.path or "/", body=body, headers={
            "Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json"})
        response = connection.getresponse()
        status, raw = response.status, response.read(MAX_RESPONSE_BYTES)
    except TimeoutError as error:
        raise TokenRefreshFailed("timeout", f"No answer from Fiken's token endpoint: {error}", True) from error
    except (OSError, http.client.HTTPException) as error:
        raise TokenRefreshFailed("system_unavailable", f"Could not reach Fiken's token endpoint: {error}",
                                 True) from error
    finally:
        connection.close()
    text = raw.decode("utf-8", errors="replace").strip()
    for secret in (refresh_token, client_secret):
        text = text.replace(secret, "[redacted]")
    try:
        payload = json.loads(raw) if raw else {}
    except ValueError:
        payload = {}
    payload = payload if isinstance(payload, dict) else {}
    if status == HTTPStatus.OK and isinstance(payload.get("access_token"), str) and payload["access_token"]:
        rotated = payload.get("refresh_token")
        expires = payload.get("expires_in")
        return Tokens(payload["access_token"], rotated if isinstance(rotated, str) and rotated else refresh_token,
                      float(expires) if isinstance(expires, (int, float)) and not isinstance(expires, bool) else None)
    if payload.get("error") == "invalid_grant" or status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED):
        raise TokenRefreshFailed(  # RFC 6749 §5.2: the refresh token is expired, revoked or already used
            "credentials_expired", "Fiken no longer accepts this connection's refresh token: reconnect Fiken in "
            f"the connector settings (token endpoint answered {status_line(status)}: {text[:200]})", False)
    if status >= 500:
        raise TokenRefreshFailed("system_unavailable", f"Fiken's token endpoint answered {status_line(status)}: "
                                 f"{text[:200]}", True)
    raise TokenRefreshFailed("unknown", f"Fiken's token endpoint answered {status_line(status)}: {text[:200]}", True)
