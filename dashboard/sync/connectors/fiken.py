"""The Fiken connector (API v2): an approved record becomes a general journal entry.

Every path is under `/companies/{slug}`. The connector's write-only secret is either a personal API token (a
bearer token that does not expire) or, for an OAuth2 connection, a JSON object
`{"access_token": …, "refresh_token": …, "expires_at": <Unix seconds or null>}`: a secret that parses as a JSON
object with both tokens is an OAuth2 connection (a personal API token is never JSON). A record is
booked as one journal entry with one line: its amount in integer øre, debited to the account mapped for its
record type and credited to the bank/credit account (accounts `NNNN` or `NNNN:NNNNN`, checked before
sending). Fiken answers 201 with an empty body and a `Location` header naming the new entry.

Fiken allows one concurrent request per client and may answer 429, or ban, above that or above about four
requests per second. So every request is made holding a Redis lock shared by all workers (a timeout, so a
dead holder frees it, and a token, so only the holder releases it), and no sooner than a next-allowed time
kept in Redis (a quarter of a second after the previous request ended), read and moved under that lock. The lock and the pace belong to the credential (a hash of
the token): what Fiken counts is the client, and the adapter is not told its connector's id.

Fiken has no idempotency key. The record's reference is in the entry's description, so before re-pushing a
record whose earlier attempt may have reached Fiken (`attempt_number > 1`), the entries of its date are
looked up and one naming the reference counts as booked.

OAuth2 connections: when the access token has expired or expires within EXPIRY_MARGIN, or Fiken answers 401,
the adapter refreshes it at the token endpoint with the platform's OAuth client (settings `FIKEN_CLIENT_ID`,
`FIKEN_CLIENT_SECRET`, `FIKEN_TOKEN_URL`). Refresh tokens rotate (the old one is then `invalid_grant`), so
two workers must never refresh with the same one: the refresh is made holding the client's lock, after
re-reading the stored secret (`load_secret`: another worker may just have rotated it, and its fresh access
token is then used instead), and the new tokens are stored and committed (`store_secret`, its own short
transaction) before the new access token is used. Without `store_secret` (a connection check) the adapter
never refreshes: a refresh token whose successor cannot be stored would be spent. `invalid_grant` fails the
push as credentials_expired, telling the admin to reconnect Fiken. The lock and pace of an OAuth2 connection
belong to the OAuth client and company (its tokens change).

Error bodies are not specified: a failure keeps the status and the raw text (trimmed), never a guessed
schema. Settings: `company_slug`, `account_<record type>` for each record type, `credit_account`;
`base_url` (default Fiken's) and `timeout` are kept as saved.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from flask_babel import gettext as _
from redis.exceptions import LockError

from dashboard import outbound
from dashboard.extensions import redis_ext
from dashboard.sync.connectors.base import CheckedSettings, OutgoingRecord, PushResult
from dashboard.sync.connectors.http import _retry_after, _status_line
from dashboard.vocabulary import RecordType, values

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.fiken.no/api/v2"
DEFAULT_TOKEN_URL = "https://fiken.no/oauth/token"
CLIENT_ID_SETTING, CLIENT_SECRET_SETTING, TOKEN_URL_SETTING = "FIKEN_CLIENT_ID", "FIKEN_CLIENT_SECRET", "FIKEN_TOKEN_URL"
EXPIRY_MARGIN = 60.0
"""Seconds before its expiry that an OAuth2 access token is refreshed rather than used."""
DEFAULT_TIMEOUT = 20.0
MIN_INTERVAL = 0.25
"""Seconds from the end of one request of a client to the start of its next: at most four reach Fiken in any
second."""
LOCK_WAIT = 30.0
"""How long a push waits for another worker's request to the same client before giving up (rate_limited)."""
MAX_RESPONSE_BYTES = 256 * 1024
MAX_MESSAGE_TEXT = 500
MAX_DESCRIPTION = 200
PAGE_SIZE = 100
MAX_PAGES = 50
TIME_ZONE = ZoneInfo("Europe/Oslo")
"""Entries are dated by the day the record was approved in Norway."""

ACCOUNT = re.compile(r"[0-9]{4}(?::[0-9]{5})?")
RECORD_TYPES = values(RecordType)
ACCOUNT_FIELDS = tuple(f"account_{t}" for t in RECORD_TYPES)
SETTINGS_FIELDS = ("company_slug", *ACCOUNT_FIELDS, "credit_account")
SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


class _ClientBusy(Exception):
    """Another worker held the client's lock for longer than LOCK_WAIT: nothing was sent."""


class _NoAccess(Exception):
    """No usable OAuth2 access token (the refresh failed, or its tokens could not be stored): nothing was sent."""

    def __init__(self, result: PushResult) -> None:
        super().__init__(result.message)
        self.result = result


class _Unreachable(Exception):
    """No HTTP answer: `reason` is the OSError, HTTPException, _ClientBusy or _NoAccess; `sent` is True when the
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


class FikenAdapter:
    """Books a record as a Fiken general journal entry, one request at a time per client, paced."""

    def __init__(self, settings: Mapping[str, Any], secret: str | None, *, redis: Any = None,
                 store_secret: Callable[[str], None] | None = None,
                 load_secret: Callable[[], str | None] | None = None,
                 client_id: str | None = None, client_secret: str | None = None, token_url: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        problems = settings_problems(settings)
        if problems:
            raise ValueError(" ".join(problems))
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
        self.accounts: dict[str, str] = {t: settings[f"account_{t}"] for t in RECORD_TYPES
                                         if settings.get(f"account_{t}")}
        self.credit_account: str = settings["credit_account"]
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

    # --- push --------------------------------------------------------------------------------------------

    def push(self, record: OutgoingRecord) -> PushResult:
        problem = self._record_problem(record)
        if problem is not None:
            return problem
        if record.attempt_number > 1:  # the earlier attempt may have booked it: no idempotency key in Fiken
            found = self.find_booked(record)
            if isinstance(found, PushResult):
                return found
        body = json.dumps(journal_entry(record, self.accounts[record.record_type], self.credit_account),
                          ensure_ascii=False).encode("utf-8")
        try:
            answer = self.request("POST", "/generalJournalEntries", body=body)
        except _Unreachable as error:
            return self._unreachable(error)
        if answer.status == HTTPStatus.CREATED or 200 <= answer.status < 300:
            entry_id = (answer.headers.get("Location") or "").rstrip("/").rpartition("/")[2]
            return PushResult.success(entry_id) if entry_id else PushResult(ok=True)
        return self._rejected(answer)

    def check_connection(self) -> list[PushResult]:
        """Read the company, then each mapped account: the failures (empty when the connection works).

        For the settings page's "Test connection" (issue 13, item 4): one request at a time, paced, like pushes.
        """
        try:
            answer = self.request("GET", "")
        except _Unreachable as error:
            return [self._unreachable(error)]
        if answer.status != HTTPStatus.OK:
            return [self._rejected(answer)]
        problems: list[PushResult] = []
        mapped = dict.fromkeys([*self.accounts.values(), self.credit_account])
        for account in mapped:
            try:
                answer = self.request("GET", f"/accounts/{quote(account, safe=':')}")
            except _Unreachable as error:
                return [*problems, self._unreachable(error)]
            if answer.status == HTTPStatus.NOT_FOUND:
                problems.append(PushResult.failure(
                    "account_mapping_missing", f"Fiken has no account {account} in company {self.slug!r}.",
                    retryable=False))
            elif answer.status != HTTPStatus.OK:
                return [*problems, self._rejected(answer)]
        return problems

    def find_booked(self, record: OutgoingRecord) -> PushResult | None:
        """The entry of the record's date naming its reference, as a success; None when there is none; the
        failure when Fiken could not be asked (then pushing again could book twice)."""
        marker = reference_marker(record.source_ref)
        for page in range(MAX_PAGES):
            query = {"date": entry_date(record.approved_at).isoformat(), "page": page, "pageSize": PAGE_SIZE}
            try:
                answer = self.request("GET", "/generalJournalEntries", query=query)
            except _Unreachable as error:
                return self._unreachable(error)
            if answer.status != HTTPStatus.OK:
                return self._rejected(answer)
            try:
                entries = json.loads(answer.body or b"[]")
            except ValueError:
                return PushResult.failure(
                    "unknown", f"Fiken's list of journal entries could not be read: {answer.text()[:200]}",
                    retryable=True)
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and _names(entry, marker):
                    return PushResult.success(_entry_id(entry) or f"{record.source_ref}")
            pages = _int(answer.headers.get("Fiken-Api-Page-Count"))
            if pages is None or page + 1 >= pages or not entries:
                return None
        return None

    def _record_problem(self, record: OutgoingRecord) -> PushResult | None:
        if record.currency != "NOK":
            return PushResult.failure(
                "validation_failed", f"Fiken books journal entries in NOK; record {record.source_ref} is in "
                f"{record.currency}.", retryable=False)
        if isinstance(record.amount_minor, bool) or not isinstance(record.amount_minor, int) \
                or record.amount_minor <= 0:
            return PushResult.failure(
                "validation_failed", f"The amount of record {record.source_ref} must be a positive whole number "
                f"of øre, not {record.amount_minor!r}.", retryable=False)
        account = self.accounts.get(record.record_type)
        if not account:
            return PushResult.failure(
                "account_mapping_missing", f"No Fiken account is mapped for record type {record.record_type}.",
                retryable=False)
        for name, value in ((record.record_type, account), ("bank/credit", self.credit_account)):
            if not ACCOUNT.fullmatch(value):
                return PushResult.failure(
                    "account_mapping_missing", f"The {name} account {value!r} is not a Fiken account "
                    "(NNNN or NNNN:NNNNN).", retryable=False)
        return None

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
        nothing is refreshed (its refresh token would be spent). Raises _Unreachable(_NoAccess).
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

    def _no_access(self, code: str, message: str, retryable: bool) -> _Unreachable:
        return _Unreachable(_NoAccess(PushResult.failure(code, self._redacted(message), retryable)), sent=False)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """Hold the client's lock (across every worker) and wait for its next allowed time; raises
        _Unreachable(_ClientBusy) when another worker holds it for longer than LOCK_WAIT."""
        redis = self._redis_client()
        lock = redis.lock(self._lock_key, timeout=self.timeout * 2 + 10, sleep=0.01, blocking_timeout=LOCK_WAIT)
        if not lock.acquire():
            raise _Unreachable(_ClientBusy(f"another worker held the Fiken client for {LOCK_WAIT:g} s"), sent=False)
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
            raise _Unreachable(error, sent=sent) from error
        finally:
            connection.close()

    # --- answers -----------------------------------------------------------------------------------------

    def _rejected(self, answer: Answer) -> PushResult:
        """A Fiken error status onto the vocabulary, with the status and Fiken's raw text."""
        status = answer.status
        raw = self._redacted(answer.text())[:MAX_MESSAGE_TEXT]
        text = f"Fiken answered {_status_line(status)}" + (f": {raw}" if raw else "")
        if status == HTTPStatus.UNAUTHORIZED:
            return PushResult.failure("credentials_expired", text, retryable=False)
        if status == HTTPStatus.FORBIDDEN:
            return PushResult.failure("permission_denied", text, retryable=False)
        if status == HTTPStatus.NOT_FOUND:  # every path is under the company: its slug is unknown to this token
            return PushResult.failure(
                "permission_denied", f"{text} (no company {self.slug!r} for this token: check the company slug)",
                retryable=False)
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            return PushResult.failure("rate_limited", text, retryable=True,
                                      retry_after=_retry_after(answer.headers.get("Retry-After")))
        if status >= 500:
            return PushResult.failure("system_unavailable", text, retryable=True,
                                      retry_after=_retry_after(answer.headers.get("Retry-After")))
        if 400 <= status < 500:
            return PushResult.failure("validation_failed", text, retryable=False)
        return PushResult.failure("unknown", f"{text} (not followed)", retryable=False)

    def _unreachable(self, error: _Unreachable) -> PushResult:
        reason = error.reason
        if isinstance(reason, _NoAccess):
            return reason.result
        if isinstance(reason, outbound.RefusedAddress):
            return PushResult.failure(
                "permission_denied", f"Refused to connect to {self._host}: {reason.describe()}", retryable=False)
        if isinstance(reason, _ClientBusy):
            return PushResult.failure("rate_limited", f"Fiken is busy for this client: {reason}", retryable=True,
                                      retry_after=LOCK_WAIT)
        if error.sent:  # the entry may be booked: the retry looks it up first
            return PushResult.failure(
                "timeout", f"No answer from Fiken ({self._host}): {type(reason).__name__} {reason}".strip(),
                retryable=True)
        return PushResult.failure("system_unavailable", f"Could not reach Fiken ({self._host}): {reason}",
                                  retryable=True)

    def _redacted(self, text: str) -> str:
        for secret in sorted(self._seen, key=len, reverse=True):  # the whole JSON secret before its tokens
            if secret:
                text = text.replace(secret, "[redacted]")
        return text


# --- the journal entry -----------------------------------------------------------------------------------


def reference_marker(source_ref: str) -> str:
    """How an entry's description names its record: looked up before a re-push."""
    return f"[{source_ref}]"


def entry_date(approved_at: datetime) -> date:
    """The day the record was approved, in Norway (stored times are naive UTC)."""
    if approved_at.tzinfo is None:
        approved_at = approved_at.replace(tzinfo=timezone.utc)
    return approved_at.astimezone(TIME_ZONE).date()


def journal_entry(record: OutgoingRecord, debit_account: str, credit_account: str) -> dict[str, Any]:
    """The body of `POST /companies/{slug}/generalJournalEntries` for one record."""
    words = " ".join(part for part in (record.record_type.replace("_", " "), record.volunteer, record.description)
                     if part)
    description = f"{reference_marker(record.source_ref)} {words}"[:MAX_DESCRIPTION].strip()
    return {
        "description": description,
        "open": False,
        "journalEntries": [{
            "description": description,
            "date": entry_date(record.approved_at).isoformat(),
            "lines": [{"amount": record.amount_minor, "debitAccount": debit_account,
                       "creditAccount": credit_account}],
        }],
    }


def _names(entry: Mapping[str, Any], marker: str) -> bool:
    texts = [entry.get("description")]
    for inner in entry.get("journalEntries") or []:
        if isinstance(inner, dict):
            texts.append(inner.get("description"))
    return any(isinstance(t, str) and marker in t for t in texts)


def _entry_id(entry: Mapping[str, Any]) -> str | None:
    for key in ("journalEntryId", "generalJournalEntryId", "transactionId", "id"):
        value = entry.get(key)
        if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def _seconds(redis_time: tuple[int, int]) -> float:
    seconds, micros = redis_time
    return seconds + micros / 1e6


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# --- OAuth2 ----------------------------------------------------------------------------------------------


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
            f"the connector settings (token endpoint answered {_status_line(status)}: {text[:200]})", False)
    if status >= 500:
        raise TokenRefreshFailed("system_unavailable", f"Fiken's token endpoint answered {_status_line(status)}: "
                                 f"{text[:200]}", True)
    raise TokenRefreshFailed("unknown", f"Fiken's token endpoint answered {_status_line(status)}: {text[:200]}", True)


# --- settings ---------------------------------------------------------------------------------------------


def settings_problems(settings: Mapping[str, Any]) -> list[str]:
    """Human-readable problems with a Fiken connector's settings; empty when they are usable."""
    problems: list[str] = []
    slug = settings.get("company_slug")
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        problems.append(f"The company slug must be Fiken's name for the company (letters, digits, - and _), "
                        f"not {slug!r}.")
    for name in (*ACCOUNT_FIELDS, "credit_account"):
        value = settings.get(name)
        if value in (None, "") and name != "credit_account":
            continue
        if not isinstance(value, str) or not ACCOUNT.fullmatch(value):
            problems.append(f"{name} must be a Fiken account, NNNN or NNNN:NNNNN, not {value!r}.")
    if "base_url" in settings and not _http_url(settings["base_url"]):
        problems.append(f"base_url must be an http(s) URL, not {settings['base_url']!r}.")
    timeout = settings.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        problems.append(f"The timeout must be a positive number of seconds, not {timeout!r}.")
    return problems


def _http_url(url: Any) -> bool:
    """True for an http(s) URL whose host and port can be read."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        _port = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_form(fields: Mapping[str, str], saved: Mapping[str, Any]) -> CheckedSettings:
    """The settings form's slug and accounts, with the other saved settings (base URL, timeout) kept."""
    settings: dict[str, Any] = {k: v for k, v in saved.items() if k not in SETTINGS_FIELDS}
    problems: list[tuple[str, str]] = []
    slug = fields["company_slug"]
    if not SLUG.fullmatch(slug):
        problems.append(("company_slug", _("Enter the company's slug from its Fiken address, for example "
                                           "“fiken-demo-forening”.")))
    settings["company_slug"] = slug
    for name in (*ACCOUNT_FIELDS, "credit_account"):
        value = fields[name]
        if value:
            settings[name] = value
        if value and not ACCOUNT.fullmatch(value):
            problems.append((name, _("Enter an account number of four digits, or four digits, a colon and five "
                                     "digits (for example 6860 or 2400:20001).")))
        elif not value and name == "credit_account":
            problems.append((name, _("Enter the bank or credit account that pays the claims, for example 1920.")))
    if not problems and not any(fields[name] for name in ACCOUNT_FIELDS):
        problems.append((ACCOUNT_FIELDS[0], _("Map at least one record type to an account.")))
    return CheckedSettings(settings, problems)


def summary(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the connector panel shows of a Fiken connector: its company."""
    return [(_("Fiken company"), str(settings.get("company_slug", "")))]
