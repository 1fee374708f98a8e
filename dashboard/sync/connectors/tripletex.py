"""The Tripletex connector (API v2): an approved record becomes a balanced voucher in the association's ledger.

Authentication: a session token from `PUT /token/session/:create` (the platform's consumer token and the
connector's employee token as query parameters, no auth header), sent as Basic auth with user `0`. A session
expires at midnight (Oslo time) at the start of its `expirationDate`: the adapter asks for tomorrow, renews
shortly before midnight, and once more when Tripletex answers 401 code 3000 anyway.

A record becomes `POST /ledger/voucher` with two postings from row 1 (row 0 is Tripletex's own): the record
type's account debited, the credit account credited, amounts in kroner from øre with `Decimal`. Accounts and
the VAT type are referenced by id, looked up by number once per adapter. The record's source reference is
the voucher's `externalVoucherNumber`.

Tripletex has no idempotency key and accepts a second voucher with the same `externalVoucherNumber`. So
before pushing a record whose earlier attempt may have reached Tripletex (a retry, a dropped connection, or
another worker pushing the same record in this process), the adapter looks the voucher up by
`externalVoucherNumber` and takes a hit as booked.

Errors come in an envelope `{status, code, message, developerMessage, validationMessages[], requestId}`; each
is mapped onto the error vocabulary, and the requestId stays in the message for Tripletex support.

Settings: `base_url` (default https://tripletex.no/v2), `timeout` (seconds, default 10), one account number per
record type (`account_expense_claim`, `account_mileage_claim`, `account_reimbursement_payment`), the
`credit_account` and the `vat_type` number. The employee token is the connector's secret; the consumer token
is the platform's `TRIPLETEX_CONSUMER_TOKEN` setting. Outbound connections follow `dashboard.outbound`, as the
HTTP connector's do.
"""
from __future__ import annotations

import base64
import http.client
import json
import math
import re
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from flask_babel import gettext as _

from dashboard import outbound
from dashboard.sync.connectors.base import CheckedSettings, CheckLine, ConnectionCheck, OutgoingRecord, PushResult
from dashboard.sync.connectors.http import url_problem

CONSUMER_TOKEN_SETTING = "TRIPLETEX_CONSUMER_TOKEN"
DEFAULT_BASE_URL = "https://tripletex.no/v2"
DEFAULT_TIMEOUT = 10.0
OSLO = ZoneInfo("Europe/Oslo")
RENEW_BEFORE = timedelta(minutes=5)
"""A session is renewed this long before it expires, so no request is sent with a session about to lapse."""
MAX_RESPONSE_BYTES = 256 * 1024
CURRENCY_NOK_ID = 1

RECORD_TYPE_ACCOUNTS = {
    "expense_claim": "account_expense_claim",
    "mileage_claim": "account_mileage_claim",
    "reimbursement_payment": "account_reimbursement_payment",
}
DEFAULT_ACCOUNTS = {
    "account_expense_claim": 7140,  # NS 4102: reisekostnad, ikke oppgavepliktig
    "account_mileage_claim": 7100,  # bilgodtgjørelse, oppgavepliktig
    "account_reimbursement_payment": 2930,  # skyldig til ansatte/frivillige
    "credit_account": 1920,  # bankinnskudd
}
DEFAULT_VAT_TYPE = 0  # ingen avgiftsbehandling
SETTINGS_FIELDS = ("base_url", *RECORD_TYPE_ACCOUNTS.values(), "credit_account", "vat_type")
_NUMBER_FIELDS = (*RECORD_TYPE_ACCOUNTS.values(), "credit_account", "vat_type")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _Unanswered(Exception):
    """No HTTP answer: the request may or may not have been carried out."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        """`timeout` (sent, no answer: a timeout or a dropped connection) or `unreachable` (never connected)."""


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: http.client.HTTPMessage
    body: dict[str, Any]


class _Failed(Exception):
    """A request's outcome that ends the push: the result to report."""

    def __init__(self, result: PushResult) -> None:
        super().__init__(result.message)
        self.result = result


_in_flight_guard = threading.Lock()
_in_flight: dict[tuple[str, str], tuple[threading.Lock, int]] = {}
"""One lock per (Tripletex URL, externalVoucherNumber) being pushed in this process, with how many pushes hold
or wait for it: a second push of the same record waits for the first and then looks the voucher up instead of
booking it again. Entries go when their last push ends. (Across processes, the orchestrator's connector lock
keeps two workers from pushing one connector's records at once.)"""


@contextmanager
def _pushing(key: tuple[str, str]) -> Iterator[bool]:
    """Hold the record's lock; yields True when another push of the same record held it first."""
    with _in_flight_guard:
        lock, users = _in_flight.get(key, (None, 0))
        lock = lock or threading.Lock()
        _in_flight[key] = (lock, users + 1)
    contended = not lock.acquire(blocking=False)
    if contended:
        lock.acquire()
    try:
        yield contended
    finally:
        lock.release()
        with _in_flight_guard:
            lock, users = _in_flight[key]
            if users == 1:
                del _in_flight[key]
            else:
                _in_flight[key] = (lock, users - 1)


class TripletexAdapter:
    """Books records as Tripletex vouchers; maps Tripletex's error envelope onto the error vocabulary."""

    def __init__(self, settings: Mapping[str, Any], secret: str | None, *, consumer_token: str | None = None,
                 clock: Clock = _utcnow) -> None:
        problems = validate_settings(settings)
        if problems:
            raise ValueError(" ".join(problems))
        self.base_url = str(settings.get("base_url") or DEFAULT_BASE_URL).strip().rstrip("/")
        parts = urlsplit(self.base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = parts.path
        self.timeout = float(settings.get("timeout", DEFAULT_TIMEOUT))
        self.accounts = {name: int(settings.get(name, DEFAULT_ACCOUNTS[name])) for name in DEFAULT_ACCOUNTS}
        self.vat_type = int(settings.get("vat_type", DEFAULT_VAT_TYPE))
        self._employee_token = secret or None
        if consumer_token is None and has_app_context():
            consumer_token = current_app.config.get(CONSUMER_TOKEN_SETTING)
        self._consumer_token = consumer_token or None
        self._allow_private = outbound.private_allowed()
        self._clock = clock
        self._ssl = ssl.create_default_context() if self._https else None
        self._lock = threading.Lock()
        self._session: tuple[str, datetime] | None = None
        """The session token and when it expires."""
        self._account_ids: dict[int, int] = {}
        self._vat_type_ids: dict[int, int] = {}

    # --- pushing --------------------------------------------------------------------------------------

    def push(self, record: OutgoingRecord) -> PushResult:
        try:
            with _pushing((self.base_url, record.source_ref)) as contended:
                if record.attempt_number > 1 or contended:
                    booked = self._booked_voucher(record)
                    if booked is not None:
                        return PushResult.success(booked)
                return self._book(record)
        except _Failed as failed:
            return failed.result

    def _book(self, record: OutgoingRecord) -> PushResult:
        body = self._voucher(record)
        try:
            answer = self._request("POST", "/ledger/voucher", body=body)
        except _Unanswered as unanswered:
            if unanswered.kind != "timeout":
                return self._unreachable(unanswered)
            # The voucher may be booked: look once now; the next attempt looks again.
            try:
                booked = self._booked_voucher(record)
            except _Failed:
                booked = None
            if booked is not None:
                return PushResult.success(booked)
            return self._unreachable(unanswered)
        if answer.status in (200, 201):
            value = answer.body.get("value") or {}
            voucher_id = value.get("id") if isinstance(value, dict) else None
            return PushResult.success(str(voucher_id)) if voucher_id is not None else PushResult(ok=True)
        return self._failure(answer)

    def _booked_voucher(self, record: OutgoingRecord) -> str | None:
        """The id of a voucher already booked for this record, found by its externalVoucherNumber."""
        day = _voucher_date(record)
        answer = self._call("GET", "/ledger/voucher", {
            "externalVoucherNumber": record.source_ref, "dateFrom": day.isoformat(),
            "dateTo": (day + timedelta(days=1)).isoformat(), "fields": "id,externalVoucherNumber", "count": 10})
        for value in answer.body.get("values") or []:
            if isinstance(value, dict) and value.get("externalVoucherNumber") == record.source_ref:
                return str(value.get("id"))
        return None

    def _voucher(self, record: OutgoingRecord) -> dict[str, Any]:
        if record.currency != "NOK":
            raise _Failed(PushResult.failure(
                "validation_failed", f"Tripletex vouchers are booked in NOK here; record {record.source_ref} is in "
                f"{record.currency}.", retryable=False))
        setting = RECORD_TYPE_ACCOUNTS.get(record.record_type)
        if setting is None:
            raise _Failed(PushResult.failure(
                "account_mapping_missing", f"No Tripletex account is mapped for record type {record.record_type}.",
                retryable=False))
        debit = self._account_id(self.accounts[setting])
        credit = self._account_id(self.accounts["credit_account"])
        vat = self._vat_type_id(self.vat_type)
        amount = kroner(record.amount_minor)
        day = _voucher_date(record).isoformat()
        text = record.description or f"{record.record_type} {record.volunteer}".strip()
        description = f"{record.source_ref}: {text}"[:255]

        def posting(row: int, account: int, gross: Decimal) -> dict[str, Any]:
            return {"row": row, "date": day, "description": description, "account": {"id": account},
                    "vatType": {"id": vat}, "currency": {"id": CURRENCY_NOK_ID},
                    "amountGross": gross, "amountGrossCurrency": gross}

        return {"date": day, "description": description, "externalVoucherNumber": record.source_ref,
                "postings": [posting(1, debit, amount), posting(2, credit, -amount)]}

    def _account_id(self, number: int) -> int:
        return self._id_by_number(self._account_ids, "/ledger/account", number, lambda: PushResult.failure(
            "account_mapping_missing", f"Account {number} does not exist in Tripletex: create it, or map the record "
            "type to another account in the connector settings.", retryable=False))

    def _vat_type_id(self, number: int) -> int:
        return self._id_by_number(self._vat_type_ids, "/ledger/vatType", number, lambda: PushResult.failure(
            "invalid_vat_code", f"VAT type {number} does not exist in Tripletex: choose another in the connector "
            "settings.", retryable=False))

    def _id_by_number(self, cache: dict[int, int], path: str, number: int, missing: Callable[[], PushResult]) -> int:
        if number in cache:
            return cache[number]
        answer = self._call("GET", path, {"number": str(number), "fields": "id,number", "count": 1})
        values = [v for v in answer.body.get("values") or [] if isinstance(v, dict) and "id" in v]
        if not values:
            raise _Failed(missing())
        cache[number] = int(values[0]["id"])
        return cache[number]

    # --- accounting periods ---------------------------------------------------------------------------

    def closed_periods(self, start: date, end: date) -> list[tuple[date, date]]:
        """The closed accounting periods that overlap [start, end), as (start, end-exclusive) pairs.

        Raises ValueError with the mapped failure's message when Tripletex cannot be read."""
        try:
            answer = self._call("GET", "/ledger/accountingPeriod", {
                "startFrom": (date(start.year, start.month, 1) - timedelta(days=366)).isoformat(),
                "startTo": end.isoformat(), "count": 1000})
        except _Failed as failed:
            raise ValueError(failed.result.message) from None
        closed = []
        for value in answer.body.get("values") or []:
            try:
                period = (date.fromisoformat(value["start"]), date.fromisoformat(value["end"]))
            except (KeyError, TypeError, ValueError):
                continue
            if value.get("isClosed") and period[0] < end and period[1] > start:
                closed.append(period)
        return sorted(closed)

    def hold_back(self, records: list[OutgoingRecord]) -> dict[str, PushResult]:
        """The pre-flight: records dated in a closed accounting period fail as `period_locked` without a push
        (Tripletex would refuse each with 409/10000), so the closed period raises one connector alert and the
        records of open periods still sync. If the periods cannot be read, nothing is held back: each push
        then meets the same failure and reports it."""
        if not records:
            return {}
        days = [_voucher_date(r) for r in records]
        try:
            closed = self.closed_periods(min(days), max(days) + timedelta(days=1))
        except ValueError:
            return {}
        held = {}
        for record, day in zip(records, days):
            period = next((p for p in closed if p[0] <= day < p[1]), None)
            if period is not None:
                held[record.source_ref] = PushResult.failure(
                    "period_locked", f"Held back: the accounting period {period[0]:%Y-%m-%d} to "
                    f"{period[1] - timedelta(days=1):%Y-%m-%d} is closed in Tripletex (voucher date {day:%Y-%m-%d})",
                    retryable=False)
        return held

    # --- connection check -----------------------------------------------------------------------------

    def check_connection(self) -> ConnectionCheck:
        """Sign in, read who the session is (the company), today's accounting period, each mapped account and the
        VAT type: a line for each, in words for the administrator (issue 13, item 4). Never raises for
        Tripletex's answers; secrets are redacted from every line."""
        lines: list[CheckLine] = []
        try:
            answer = self._call("GET", "/token/session/>whoAmI", {"fields": "employeeId,companyId,company(id,name)"})
        except _Failed as failed:
            verb = "sign in to" if failed.result.error_code in ("credentials_expired", "permission_denied") \
                else "reach"
            lines.append(CheckLine(False, f"Could not {verb} Tripletex: {failed.result.message}"))
            return self._checked(lines)
        value = answer.body.get("value") if isinstance(answer.body.get("value"), dict) else {}
        company = value.get("company") if isinstance(value.get("company"), dict) else {}
        company_id = value.get("companyId") or company.get("id")
        name = company.get("name")
        lines.append(CheckLine(True, f"Signed in to Tripletex as company {company_id}"
                                     + (f" ({name})" if isinstance(name, str) and name else "")))
        today = self._clock().astimezone(OSLO).date()
        try:
            period = self._period_of(today)
        except _Failed as failed:
            lines.append(CheckLine(False, f"Could not read the accounting periods: {failed.result.message}"))
            return self._checked(lines)
        if period is None:
            lines.append(CheckLine(False, f"Tripletex has no accounting period for today ({today:%Y-%m-%d})"))
        else:
            (start, end), closed = period
            monthly = start.day == end.day == 1 and (end - start).days <= 31
            span = f"{start:%Y-%m}" if monthly else f"{start:%Y-%m-%d} to {end - timedelta(days=1):%Y-%m-%d}"
            lines.append(CheckLine(not closed, f"Accounting period {span} is closed: records dated in it are held "
                                               "back" if closed else f"Accounting period {span} is open"))
        for setting, number in _mapped_accounts(self.accounts):
            try:
                self._account_id(number)
            except _Failed as failed:
                if failed.result.error_code != "account_mapping_missing":
                    lines.append(CheckLine(False, f"Could not look up account {number}: {failed.result.message}"))
                    return self._checked(lines)
                lines.append(CheckLine(False, f"Account {number} not found ({setting})"))
            else:
                lines.append(CheckLine(True, f"Account {number} exists ({setting})"))
        try:
            self._vat_type_id(self.vat_type)
        except _Failed as failed:
            lines.append(CheckLine(False, f"VAT type {self.vat_type} not found" if failed.result.error_code ==
                                   "invalid_vat_code" else f"Could not look up VAT type {self.vat_type}: "
                                   f"{failed.result.message}"))
        else:
            lines.append(CheckLine(True, f"VAT type {self.vat_type} exists"))
        return self._checked(lines)

    def _checked(self, lines: list[CheckLine]) -> ConnectionCheck:
        return ConnectionCheck.of(lines).redacted(self._employee_token, self._consumer_token)

    def _period_of(self, day: date) -> tuple[tuple[date, date], bool] | None:
        """The accounting period holding `day`, as ((start, end-exclusive), closed); None when there is none."""
        answer = self._call("GET", "/ledger/accountingPeriod", {
            "startFrom": (day - timedelta(days=366)).isoformat(), "startTo": (day + timedelta(days=1)).isoformat(),
            "count": 1000})
        for value in answer.body.get("values") or []:
            try:
                start, end = date.fromisoformat(value["start"]), date.fromisoformat(value["end"])
            except (KeyError, TypeError, ValueError):
                continue
            if start <= day < end:
                return (start, end), bool(value.get("isClosed"))
        return None

    # --- requests -------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, query: Mapping[str, Any] | None = None) -> _Answer:
        """A request whose failure ends the push (look-ups); 2xx answers only."""
        try:
            answer = self._request(method, path, query=query)
        except _Unanswered as unanswered:
            raise _Failed(self._unreachable(unanswered)) from None
        if answer.status >= 300:
            raise _Failed(self._failure(answer))
        return answer

    def _request(self, method: str, path: str, query: Mapping[str, Any] | None = None,
                 body: dict[str, Any] | None = None) -> _Answer:
        """An authenticated request; renews the session once when Tripletex says it has expired."""
        for renewed in (False, True):
            token = self._session_token(renew=renewed)
            answer = self._send(method, path, query, body, authorization=_basic(token))
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
                raise _Failed(PushResult.failure(
                    "credentials_expired", f"The platform has no Tripletex consumer token ({CONSUMER_TOKEN_SETTING}): "
                    "ask the platform operator to set it.", retryable=False))
            if not self._employee_token:
                raise _Failed(PushResult.failure(
                    "credentials_expired", "The connector has no Tripletex employee token: enter it in the connector "
                    "settings.", retryable=False))
            expires_on = now.astimezone(OSLO).date() + timedelta(days=1)
            if now >= _midnight(expires_on) - RENEW_BEFORE:  # a few minutes before midnight: ask for a day more
                expires_on += timedelta(days=1)
            try:
                answer = self._send("PUT", "/token/session/:create", {
                    "consumerToken": self._consumer_token, "employeeToken": self._employee_token,
                    "expirationDate": expires_on.isoformat()}, None, authorization=None)
            except _Unanswered as unanswered:
                raise _Failed(self._unreachable(unanswered)) from None
            value = answer.body.get("value")
            token = value.get("token") if isinstance(value, dict) else None
            if answer.status >= 300 or not isinstance(token, str) or not token:
                raise _Failed(self._failure(answer, session=True))
            self._session = (token, _midnight(expires_on))
            return token

    def _send(self, method: str, path: str, query: Mapping[str, Any] | None, body: dict[str, Any] | None,
              authorization: str | None) -> _Answer:
        target = self._path + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            data = _json_with_decimals(body)
            headers["Content-Type"] = "application/json; charset=utf-8"
        connection = self._connection()
        sent = False
        try:
            connection.request(method, target, body=data, headers=headers)
            sent = True
            response = connection.getresponse()
            raw = response.read(MAX_RESPONSE_BYTES)
            return _Answer(response.status, response.headers, _json_object(raw))
        except TimeoutError:
            raise _Unanswered("timeout", f"No answer from Tripletex within {self.timeout:g} seconds") from None
        except outbound.RefusedAddress as refused:
            raise _Unanswered("refused", refused.describe()) from None
        except (OSError, http.client.HTTPException) as error:
            if sent:
                raise _Unanswered("timeout", f"Tripletex closed the connection without answering ({error})") from None
            raise _Unanswered("unreachable", f"Could not reach Tripletex at {self._where()}: {error}") from None
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

    def _unreachable(self, unanswered: _Unanswered) -> PushResult:
        message = self._redacted(str(unanswered))
        if unanswered.kind == "refused":
            return PushResult.failure("permission_denied", f"Refused to connect to {self._where()}: {message} "
                                      "Point the connector at Tripletex's public URL.", retryable=False)
        if unanswered.kind == "timeout":
            return PushResult.failure("timeout", message, retryable=True)
        return PushResult.failure("system_unavailable", message, retryable=True)

    def _failure(self, answer: _Answer, session: bool = False) -> PushResult:
        result = _failure(answer, session)
        return replace(result, message=self._redacted(result.message or ""))

    def _redacted(self, text: str) -> str:
        for secret in (self._employee_token, self._consumer_token):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text


# --- answers ----------------------------------------------------------------------------------------------


def _failure(answer: _Answer, session: bool = False) -> PushResult:
    """Tripletex's error envelope mapped onto the error vocabulary, its requestId kept in the message."""
    status, envelope = answer.status, answer.body
    code = envelope.get("code")
    text = _envelope_text(envelope) or f"HTTP {status}"
    request_id = envelope.get("requestId") or answer.headers.get("X-Tlx-Request-Id")
    if request_id:
        text = f"{text} (requestId {request_id})"
    where = "Tripletex refused the session token request: " if session else "Tripletex: "
    text = where + text
    if status == 401:
        return PushResult.failure("credentials_expired", text, retryable=False)
    if status == 403:
        return PushResult.failure("permission_denied", text, retryable=False)
    if status == 429:
        return PushResult.failure("rate_limited", text, retryable=True,
                                  retry_after=_seconds(answer.headers.get("X-Rate-Limit-Reset")))
    if status == 409 and code in (10000, None):
        return PushResult.failure("period_locked", text, retryable=False)
    if 400 <= status < 500:
        return PushResult.failure("validation_failed", text, retryable=False)
    if status >= 500:
        return PushResult.failure("system_unavailable", text, retryable=True)
    return PushResult.failure("unknown", text, retryable=False)


def _envelope_text(envelope: Mapping[str, Any]) -> str:
    """The envelope's message and its field messages (Norwegian, for the administrator)."""
    parts = []
    message = envelope.get("message")
    if isinstance(message, str) and message.strip():
        parts.append(message.strip())
    fields = []
    for item in envelope.get("validationMessages") or []:
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            field = item.get("field")
            fields.append(f"{field}: {item['message']}" if field else item["message"])
    if fields:
        parts.append("; ".join(fields))
    return " ".join(parts)


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


_DECIMAL = re.compile(r'"\\u0000decimal:(-?\d+(?:\.\d+)?)"')


def _json_with_decimals(body: dict[str, Any]) -> bytes:
    """JSON with Decimals written as exact numbers (json would need floats)."""
    def tagged(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"\0decimal:{value}"
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(body, ensure_ascii=False, default=tagged)
    return _DECIMAL.sub(r"\1", text).encode("utf-8")


_ACCOUNT_USES = {
    "account_expense_claim": "expense claims", "account_mileage_claim": "mileage claims",
    "account_reimbursement_payment": "reimbursement payments", "credit_account": "credit account",
}


def _mapped_accounts(accounts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Each mapped account number once, with what it is used for ("expense claims, mileage claims")."""
    uses: dict[int, list[str]] = {}
    for setting, number in accounts.items():
        uses.setdefault(number, []).append(_ACCOUNT_USES.get(setting, setting))
    return [(", ".join(names), number) for number, names in uses.items()]


def check_connection(settings: Mapping[str, Any], secret: str | None, *, timeout: float | None = None,
                     consumer_token: str | None = None, clock: Clock = _utcnow) -> ConnectionCheck:
    """The connection check of a Tripletex connector with these settings and employee token (the settings
    form's "Test connection"); `timeout` caps the settings' timeout."""
    problems = validate_settings(settings)
    if problems:
        return ConnectionCheck.of([CheckLine(False, " ".join(problems))])
    if timeout is not None:
        settings = {**settings, "timeout": min(float(settings.get("timeout", DEFAULT_TIMEOUT)), timeout)}
    return TripletexAdapter(settings, secret, consumer_token=consumer_token, clock=clock).check_connection()


def _basic(session_token: str) -> str:
    return "Basic " + base64.b64encode(f"0:{session_token}".encode()).decode("ascii")


def kroner(amount_minor: int) -> Decimal:
    """Øre as kroner, exactly."""
    return (Decimal(amount_minor) / 100).quantize(Decimal("0.01"))


def _voucher_date(record: OutgoingRecord) -> date:
    """The approval's date in Oslo (naive times are UTC, as the database stores them)."""
    moment = record.approved_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(OSLO).date()


def _midnight(day: date) -> datetime:
    """Midnight in Oslo at the start of `day`."""
    return datetime.combine(day, time(0), OSLO)


# --- settings ---------------------------------------------------------------------------------------------


def validate_settings(settings: Mapping[str, Any]) -> list[str]:
    """Human-readable problems with a Tripletex connector's settings; empty when they are usable."""
    problems = []
    if settings.get("base_url") is not None and (problem := url_problem(settings["base_url"])):
        problems.append(str(problem))
    timeout = settings.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (0 < timeout < math.inf):
        problems.append(f"The timeout must be a positive number of seconds, not {timeout!r}.")
    for name in _NUMBER_FIELDS:
        value = settings.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            problems.append(f"{name} must be a whole number, not {value!r}.")
    return problems


def check_form(fields: Mapping[str, str], saved: Mapping[str, Any]) -> CheckedSettings:
    """The settings form's URL and numbers, with the other saved settings (the timeout) kept."""
    settings: dict[str, Any] = {**saved}
    problems: list[tuple[str, str]] = []
    url = fields.get("base_url", "")
    if url:
        problem = url_problem(url)
        if problem is None and (refusal := outbound.url_refusal(url, outbound.private_allowed())) is not None:
            problem = _("The URL cannot be used: %(reason)s", reason=refusal.describe())
        if problem:
            problems.append(("base_url", problem))
        settings["base_url"] = url
    else:
        settings.pop("base_url", None)
    for name in _NUMBER_FIELDS:
        value = fields.get(name, "")
        if not value:
            settings.pop(name, None)
        elif value.isdigit() and len(value) <= 8:
            settings[name] = int(value)
        else:
            problems.append((name, _("Enter a number from the chart of accounts, such as 7140.")
                             if name != "vat_type" else _("Enter the VAT type's number, such as 0.")))
    return CheckedSettings(settings, problems)


def summary(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the connector panel shows of a Tripletex connector: where it books, and the credit account."""
    return [(_("Tripletex"), str(settings.get("base_url") or DEFAULT_BASE_URL)),
            (_("Credit account"), str(settings.get("credit_account", DEFAULT_ACCOUNTS["credit_account"])))]
