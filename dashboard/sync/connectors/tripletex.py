"""The Tripletex connector (API v2): an approved record becomes a balanced voucher in the association's ledger.

A record becomes `POST /ledger/voucher` with two postings from row 1 (row 0 is Tripletex's own): the record
type's account debited, the credit account credited, amounts in kroner from øre with `Decimal`. Accounts and
the VAT type are referenced by id, looked up by number once per adapter. The record's source reference is
the voucher's `externalVoucherNumber`.

Tripletex has no idempotency key and accepts a second voucher with the same `externalVoucherNumber`. So
before pushing a record whose earlier attempt may have reached Tripletex (a retry, a dropped connection, or
another worker pushing the same record in this process), the adapter looks the voucher up by
`externalVoucherNumber` and takes a hit as booked.

This module holds the adapter: pushing, the accounting periods and the pre-flight `hold_back`, and the
connection check. Beside it: `tripletex_transport` (the session token and the requests), `tripletex_wire`
(Tripletex's answers, its error envelope mapped onto the error vocabulary, and the wire's formats) and
`tripletex_settings` (the settings, their validation and the settings form).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context

from dashboard.sync.connectors.base import CheckLine, ConnectionCheck, OutgoingRecord, PushResult
from dashboard.sync.connectors.tripletex_settings import (
    CONSUMER_TOKEN_SETTING, DEFAULT_ACCOUNTS, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, DEFAULT_VAT_TYPE, RECORD_TYPE_ACCOUNTS,
    mapped_accounts, validate_settings)
from dashboard.sync.connectors.tripletex_transport import Clock, TripletexClient, utcnow
from dashboard.sync.connectors.tripletex_wire import OSLO, Failed, Unanswered, kroner, voucher_date

CURRENCY_NOK_ID = 1

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


class TripletexAdapter(TripletexClient):
    """Books records as Tripletex vouchers; maps Tripletex's error envelope onto the error vocabulary."""

    def __init__(self, settings: Mapping[str, Any], secret: str | None, *, consumer_token: str | None = None,
                 clock: Clock = utcnow) -> None:
        problems = validate_settings(settings)
        if problems:
            raise ValueError(" ".join(problems))
        if consumer_token is None and has_app_context():
            consumer_token = current_app.config.get(CONSUMER_TOKEN_SETTING)
        super().__init__(str(settings.get("base_url") or DEFAULT_BASE_URL).strip().rstrip("/"),
                         float(settings.get("timeout", DEFAULT_TIMEOUT)), employee_token=secret,
                         consumer_token=consumer_token, clock=clock)
        self.accounts = {name: int(settings.get(name, DEFAULT_ACCOUNTS[name])) for name in DEFAULT_ACCOUNTS}
        self.vat_type = int(settings.get("vat_type", DEFAULT_VAT_TYPE))
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
        except Failed as failed:
            return failed.result

    def _book(self, record: OutgoingRecord) -> PushResult:
        body = self._voucher(record)
        try:
            answer = self._request("POST", "/ledger/voucher", body=body)
        except Unanswered as unanswered:
            if unanswered.kind != "timeout":
                return self._unreachable(unanswered)
            # The voucher may be booked: look once now; the next attempt looks again.
            try:
                booked = self._booked_voucher(record)
            except Failed:
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
        day = voucher_date(record)
        answer = self._call("GET", "/ledger/voucher", {
            "externalVoucherNumber": record.source_ref, "dateFrom": day.isoformat(),
            "dateTo": (day + timedelta(days=1)).isoformat(), "fields": "id,externalVoucherNumber", "count": 10})
        for value in answer.body.get("values") or []:
            if isinstance(value, dict) and value.get("externalVoucherNumber") == record.source_ref:
                return str(value.get("id"))
        return None

    def _voucher(self, record: OutgoingRecord) -> dict[str, Any]:
        if record.currency != "NOK":
            raise Failed(PushResult.failure(
                "validation_failed", f"Tripletex vouchers are booked in NOK here; record {record.source_ref} is in "
                f"{record.currency}.", retryable=False))
        setting = RECORD_TYPE_ACCOUNTS.get(record.record_type)
        if setting is None:
            raise Failed(PushResult.failure(
                "account_mapping_missing", f"No Tripletex account is mapped for record type {record.record_type}.",
                retryable=False))
        debit = self._account_id(self.accounts[setting])
        credit = self._account_id(self.accounts["credit_account"])
        vat = self._vat_type_id(self.vat_type)
        amount = kroner(record.amount_minor)
        day = voucher_date(record).isoformat()
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
            raise Failed(missing())
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
        except Failed as failed:
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
        days = [voucher_date(r) for r in records]
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
        except Failed as failed:
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
        except Failed as failed:
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
        for setting, number in mapped_accounts(self.accounts):
            try:
                self._account_id(number)
            except Failed as failed:
                if failed.result.error_code != "account_mapping_missing":
                    lines.append(CheckLine(False, f"Could not look up account {number}: {failed.result.message}"))
                    return self._checked(lines)
                lines.append(CheckLine(False, f"Account {number} not found ({setting})"))
            else:
                lines.append(CheckLine(True, f"Account {number} exists ({setting})"))
        try:
            self._vat_type_id(self.vat_type)
        except Failed as failed:
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


def check_connection(settings: Mapping[str, Any], secret: str | None, *, timeout: float | None = None,
                     consumer_token: str | None = None, clock: Clock = utcnow) -> ConnectionCheck:
    """The connection check of a Tripletex connector with these settings and employee token (the settings
    form's "Test connection"); `timeout` caps the settings' timeout."""
    problems = validate_settings(settings)
    if problems:
        return ConnectionCheck.of([CheckLine(False, " ".join(problems))])
    if timeout is not None:
        settings = {**settings, "timeout": min(float(settings.get("timeout", DEFAULT_TIMEOUT)), timeout)}
    return TripletexAdapter(settings, secret, consumer_token=consumer_token, clock=clock).check_connection()
