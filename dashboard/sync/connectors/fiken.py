"""The Fiken connector (API v2): an approved record becomes a general journal entry.

The adapter pushes a record, looks up an earlier attempt before a re-push, checks a connection, and maps
Fiken's answers onto the error vocabulary. Its requests are made by FikenClient (`fiken_client`: one at a
time per client, paced, OAuth2 tokens refreshed); the secret's forms and the token endpoint are in
`fiken_oauth`, the settings and their validation in `fiken_settings`.

Every path is under `/companies/{slug}`. A record is booked as one journal entry with one line: its amount
in integer øre, debited to the account mapped for its record type and credited to the bank/credit account
(accounts `NNNN` or `NNNN:NNNNN`, checked before sending). Fiken answers 201 with an empty body and a
`Location` header naming the new entry.

Fiken has no idempotency key. The record's reference is in the entry's description, so before re-pushing a
record whose earlier attempt may have reached Fiken (`attempt_number > 1`), the entries of its date are
looked up and one naming the reference counts as booked.

Error bodies are not specified: a failure keeps the status and the raw text (trimmed), never a guessed
schema. OAuth2's `invalid_grant` fails the push as credentials_expired, telling the admin to reconnect Fiken.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, timezone
from http import HTTPStatus
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from dashboard import outbound
from dashboard.sync.connectors.base import OutgoingRecord, PushResult
from dashboard.sync.connectors.fiken_client import LOCK_WAIT, Answer, ClientBusy, FikenClient, NoAccess, Unreachable
from dashboard.sync.connectors.fiken_settings import ACCOUNT, RECORD_TYPES, settings_problems
from dashboard.sync.connectors.answers import retry_after, status_line

MAX_MESSAGE_TEXT = 500
MAX_DESCRIPTION = 200
PAGE_SIZE = 100
MAX_PAGES = 50
TIME_ZONE = ZoneInfo("Europe/Oslo")
"""Entries are dated by the day the record was approved in Norway."""


class FikenAdapter(FikenClient):
    """Books a record as a Fiken general journal entry, one request at a time per client, paced."""

    def __init__(self, settings: Mapping[str, Any], secret: str | None, **options: Any) -> None:
        """`options` are FikenClient's (redis, store_secret, load_secret, the OAuth client, clock)."""
        problems = settings_problems(settings)
        if problems:
            raise ValueError(" ".join(problems))
        super().__init__(settings, secret, **options)
        self.accounts: dict[str, str] = {t: settings[f"account_{t}"] for t in RECORD_TYPES
                                         if settings.get(f"account_{t}")}
        self.credit_account: str = settings["credit_account"]

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
        except Unreachable as error:
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
        except Unreachable as error:
            return [self._unreachable(error)]
        if answer.status != HTTPStatus.OK:
            return [self._rejected(answer)]
        problems: list[PushResult] = []
        mapped = dict.fromkeys([*self.accounts.values(), self.credit_account])
        for account in mapped:
            try:
                answer = self.request("GET", f"/accounts/{quote(account, safe=':')}")
            except Unreachable as error:
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
            except Unreachable as error:
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
    # --- answers -----------------------------------------------------------------------------------------

    def _rejected(self, answer: Answer) -> PushResult:
        """A Fiken error status onto the vocabulary, with the status and Fiken's raw text."""
        status = answer.status
        raw = self._redacted(answer.text())[:MAX_MESSAGE_TEXT]
        text = f"Fiken answered {status_line(status)}" + (f": {raw}" if raw else "")
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
                                      retry_after=retry_after(answer.headers.get("Retry-After")))
        if status >= 500:
            return PushResult.failure("system_unavailable", text, retryable=True,
                                      retry_after=retry_after(answer.headers.get("Retry-After")))
        if 400 <= status < 500:
            return PushResult.failure("validation_failed", text, retryable=False)
        return PushResult.failure("unknown", f"{text} (not followed)", retryable=False)

    def _unreachable(self, error: Unreachable) -> PushResult:
        reason = error.reason
        if isinstance(reason, NoAccess):
            return reason.result
        if isinstance(reason, outbound.RefusedAddress):
            return PushResult.failure(
                "permission_denied", f"Refused to connect to {self._host}: {reason.describe()}", retryable=False)
        if isinstance(reason, ClientBusy):
            return PushResult.failure("rate_limited", f"Fiken is busy for this client: {reason}", retryable=True,
                                      retry_after=LOCK_WAIT)
        if error.sent:  # the entry may be booked: the retry looks it up first
            return PushResult.failure(
                "timeout", f"No answer from Fiken ({self._host}): {type(reason).__name__} {reason}".strip(),
                retryable=True)
        return PushResult.failure("system_unavailable", f"Could not reach Fiken ({self._host}): {reason}",
                                  retryable=True)


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


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
