"""Requests to one Fiken company, one at a time per client across every worker, paced, with a usable token.

Fiken allows one concurrent request per client and may answer 429, or ban, above that or above about four
requests per second. So every request is made holding a Redis lock shared by all workers (a timeout, so a
dead holder frees it, and a token, so only the holder releases it), and no sooner than a next-allowed time
kept in Redis (a quarter of a second after the previous request ended), read and moved under that lock. The
lock and the pace belong to the credential (a hash of the token): what Fiken counts is the client, and the
adapter is not told its connector's id.

OAuth2 connections (`fiken_oauth`): when the access token has expired or expires within EXPIRY_MARGIN, or
Fiken answers 401, the client refreshes it with the platform's OAuth client. Two workers must never refresh
with the same refresh token: the refresh is made holding the client's lock, after re-reading the stored
secret (`load_secret`: another worker may just have rotated it, and its fresh access token is then used
instead), and the new tokens are stored and committed (`store_secret`, its own short transaction) before the
new access token is used. Without `store_secret` (a connection check) the client never refreshes: a refresh
token whose successor cannot be stored would be spent. The lock and pace of an OAuth2 connection belong to
the OAuth client and company (its tokens change).

A request that got no HTTP answer raises Unreachable; what an answer means is the adapter's (`fiken`).
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from flask import current_app, has_app_context
from redis.exceptions import LockError

from dashboard import outbound
from dashboard.extensions import redis_ext
from dashboard.sync.connectors.answers import redact
from dashboard.sync.connectors.base import PushResult
from dashboard.sync.connectors.fiken_oauth import (
    CLIENT_ID_SETTING, CLIENT_SECRET_SETTING, DEFAULT_TOKEN_URL, TOKEN_URL_SETTING, OAuthTokens, TokenRefreshFailed,
    oauth_tokens, refresh_access_token)
from dashboard.sync.connectors.fiken_settings import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES

log = logging.getLogger("dashboard.sync.connectors.fiken")
"""The connector's logger, as before the split."""

MIN_INTERVAL = 0.25
"""Seconds from the end of one request of a client to the start of its next: at most four reach Fiken in any
second."""
LOCK_WAIT = 30.0
"""How long a push waits for another worker's request to the same client before giving up (rate_limited)."""


class ClientBusy(Exception):
    """Another worker held the client's lock for longer than LOCK_WAIT: nothing was sent."""


class NoAccess(Exception):
    """No usable OAuth2 access token (the refresh failed, or its tokens could not be stored): nothing was sent."""

    def __init__(self, result: PushResult) -> None:
        super().__init__(result.message)
        self.result = result


class Unreachable(Exception):
    """No HTTP answer: `reason` is the OSError, HTTPException, ClientBusy or NoAccess; `sent` is True when the
    request may have arrived."""

    def __init__(self, reason: BaseException, sent: bool) -> None:
        super().__init__(str(reason))
        self.reason, self.sent = reason, sent


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace").strip()


class FikenClient:
    """Requests under one Fiken company: one at a time per client, paced, with a usable bearer token."""

    def __init__(self, settings: Mapping[str, Any], secret: str | None, *, redis: Any = None,
                 store_secret: Callable[[str], None] | None = None,
                 load_secret: Callable[[], str | None] | None = None,
                 client_id: str | None = None, client_secret: str | None = None, token_url: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("A Fiken connector needs an API token as its secret.")
        self._oauth = oauth_tokens(secret)
        self._store_secret, self._load_secret, self._clock = store_secret, load_secret, clock
        if has_app_context():
            client_id = client_id or current_app.config.get(CLIENT_ID_SETTING)
            client_secret = client_secret or current_app.config.get(CLIENT_SECRET_SETTING)
            token_url = token_url or current_app.config.get(TOKEN_URL_SETTING)
        self._client_id, self._client_secret = client_id or None, client_secret or None
        self._token_url = token_url or DEFAULT_TOKEN_URL
        self._seen: set[str] = {secret}
        """Every secret and token this adapter has held: redacted from its messages."""
        if self._oauth is not None:
            self._seen.update((self._oauth.access_token, self._oauth.refresh_token))
        self.slug: str = settings["company_slug"]
        self.base_url: str = str(settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = float(settings.get("timeout", DEFAULT_TIMEOUT))
        self._secret = secret
        self._redis = redis if redis is not None or not has_app_context() else redis_ext.client
        self._allow_private = outbound.private_allowed()
        parts = urlsplit(self.base_url)
        self._scheme, self._host, self._port = parts.scheme, parts.hostname or "", parts.port
        self._prefix = parts.path.rstrip("/") + f"/companies/{quote(self.slug, safe='')}"
        # An OAuth2 connection's tokens change, so its lock is the OAuth client's and the company's
        identity = secret if self._oauth is None else f"oauth\0{self._client_id}\0{self.slug}"
        client = hashlib.sha256(f"{self.base_url}\0{identity}".encode()).hexdigest()[:24]
        self._lock_key = f"fiken:lock:{client}"
        self._pace_key = f"fiken:next-request-at:{client}"

    # --- requests: one at a time per client, paced -------------------------------------------------------

    def request(self, method: str, path: str, *, body: bytes | None = None,
                query: Mapping[str, Any] | None = None) -> Answer:
        """One request under the company, made holding the client's lock, no sooner than its pace allows.

        An OAuth2 connection first refreshes an access token that expired (or is about to), and once more
        after a 401, then repeats the request (in a new turn) with the new token.
        """
        target = self._prefix + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            headers["Content-Length"] = str(len(body))
        rejected: str | None = None
        while True:
            with self._turn():
                if self._oauth is not None:
                    self._fresh_access(rejected)
                bearer = self._oauth.access_token if self._oauth is not None else self._secret
                answer = self._send(method, target, body, {**headers, "Authorization": f"Bearer {bearer}"})
            if answer.status != HTTPStatus.UNAUTHORIZED or self._oauth is None or rejected is not None:
                return answer
            rejected = bearer

    # --- OAuth2: refresh under the client's lock, store before use ---------------------------------------

    def _fresh_access(self, rejected: str | None) -> None:
        """Make `self._oauth` hold a usable access token; call holding the client's lock.

        `rejected` is the access token Fiken just answered 401 to. The stored secret is read again first: when
        another worker has rotated the tokens since this adapter read them, their access token is used and
        nothing is refreshed (its refresh token would be spent). Raises Unreachable(NoAccess).
        """
        assert self._oauth is not None
        if rejected is None and not self._oauth.expiring(self._clock()):
            return
        if self._load_secret is not None:
            stored = oauth_tokens(self._load_secret() or "")
            if stored is not None:
                self._adopt(stored)
                usable = stored.access_token != rejected and not stored.expiring(self._clock())
                if usable:
                    return
        if self._store_secret is None:
            raise self._no_access("credentials_expired", "The Fiken access token has expired and this check "
                                  "cannot store refreshed tokens: run a sync, or reconnect Fiken in the connector "
                                  "settings.", retryable=False)
        if not (self._client_id and self._client_secret):
            raise self._no_access(
                "credentials_expired", f"The platform has no Fiken OAuth client ({CLIENT_ID_SETTING}, "
                f"{CLIENT_SECRET_SETTING}) to refresh the connection's access token with.", retryable=False)
        try:
            tokens = refresh_access_token(self._oauth.refresh_token, self._client_id, self._client_secret,
                                          token_url=self._token_url, timeout=self.timeout)
        except TokenRefreshFailed as failed:
            raise self._no_access(failed.code, failed.message, failed.retryable) from failed
        fresh = OAuthTokens(tokens.access_token, tokens.refresh_token,
                            self._clock() + tokens.expires_in if tokens.expires_in is not None else None)
        self._seen.update((fresh.access_token, fresh.refresh_token))
        try:  # committed before the new access token is used: the old refresh token is spent now
            self._store_secret(fresh.secret())
        except Exception as error:  # a callback of the caller's: whatever it raised, the tokens are not stored
            log.exception("storing refreshed Fiken tokens failed")
            raise self._no_access(
                "unknown", f"Fiken gave new tokens, but they could not be saved ({type(error).__name__}); if the "
                "next sync says the connection is no longer accepted, reconnect Fiken in the connector settings.",
                retryable=True) from error
        self._adopt(fresh)

    def _adopt(self, tokens: "OAuthTokens") -> None:
        self._oauth = tokens
        self._seen.update((tokens.access_token, tokens.refresh_token, tokens.secret()))

    def _no_access(self, code: str, message: str, retryable: bool) -> Unreachable:
        return Unreachable(NoAccess(PushResult.failure(code, self._redacted(message), retryable)), sent=False)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """Hold the client's lock (across every worker) and wait for its next allowed time; raises
        Unreachable(ClientBusy) when another worker holds it for longer than LOCK_WAIT."""
        redis = self._redis_client()
        lock = redis.lock(self._lock_key, timeout=self.timeout * 2 + 10, sleep=0.01, blocking_timeout=LOCK_WAIT)
        if not lock.acquire():
            raise Unreachable(ClientBusy(f"another worker held the Fiken client for {LOCK_WAIT:g} s"), sent=False)
        try:
            self._wait_for_pace(redis)
            try:
                yield
            finally:
                self._next_allowed_after(redis)
        finally:
            try:
                lock.release()
            except LockError:  # it expired (and may be another worker's now): not ours to free
                pass

    def _wait_for_pace(self, redis: Any) -> None:
        """Sleep until the client's next allowed time (Redis server time, so every process agrees)."""
        next_at = float(redis.get(self._pace_key) or 0)
        wait = next_at - _seconds(redis.time())
        if wait > 0:
            time.sleep(min(wait, MIN_INTERVAL))

    def _next_allowed_after(self, redis: Any) -> None:
        """The next request may start MIN_INTERVAL after this one ended: counted from its end (when Fiken has
        surely received it), two requests reach Fiken at least MIN_INTERVAL apart, however long each took."""
        redis.set(self._pace_key, repr(_seconds(redis.time()) + MIN_INTERVAL), px=int(MIN_INTERVAL * 1000) + 1000)

    def _redis_client(self) -> Any:
        if self._redis is None:
            self._redis = redis_ext.client
        return self._redis

    def _send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=self.timeout)
        connection._create_connection = partial(  # type: ignore[attr-defined]
            outbound.create_connection, allow_private=self._allow_private)
        sent = False
        try:
            connection.putrequest(method, target)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders(body)
            sent = True
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read(MAX_RESPONSE_BYTES))
        except (OSError, http.client.HTTPException) as error:
            raise Unreachable(error, sent=sent) from error
        finally:
            connection.close()

    def _redacted(self, text: str) -> str:
        return redact(text, *self._seen)


def _seconds(redis_time: tuple[int, int]) -> float:
    seconds, micros = redis_time
    return seconds + micros / 1e6

