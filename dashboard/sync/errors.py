"""The closed vocabulary of sync error codes, with what an administrator should do."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class ErrorCode:
    code: str
    title: str
    hint: str
    transient: bool
    connector_level: bool = False
    """True when the cause is the connector's, not the record's: one connector alert speaks for it, and the
    records it fails raise no alerts of their own."""
    stops_batch: bool = False
    """True when the error affects every record: the batch stops instead of pushing every record into it,
    and the connector alert resolves as soon as the connector answers otherwise."""

    def __post_init__(self) -> None:
        if self.stops_batch and not self.connector_level:
            raise ValueError(f"{self.code}: an error that stops the batch is the connector's")


_CODES = [
    ErrorCode("period_locked", _l("Accounting period locked"),
              _l("Open the accounting period in the accounting system, or change the voucher date, then retry."),
              transient=False, connector_level=True),
    ErrorCode("account_mapping_missing", _l("Account mapping missing"),
              _l("Map the record type or category to a ledger account in the connector settings, then retry."),
              transient=False),
    ErrorCode("invalid_vat_code", _l("Invalid VAT code"),
              _l("Correct the VAT code on the record or in the VAT mapping, then retry."), transient=False),
    ErrorCode("unknown_counterparty", _l("Unknown supplier or employee"),
              _l("Create the volunteer as an employee or supplier in the accounting system, then retry."),
              transient=False),
    ErrorCode("duplicate_voucher", _l("Duplicate voucher"),
              _l("The voucher exists already: check it in the accounting system and exclude this record if it is booked."),
              transient=False),
    ErrorCode("validation_failed", _l("Validation failed"),
              _l("Read the message from the accounting system, correct the record, then retry."), transient=False),
    ErrorCode("credentials_expired", _l("Credentials expired"),
              _l("Renew the API key or token in the connector settings; records retry automatically after."),
              transient=False, connector_level=True, stops_batch=True),
    ErrorCode("permission_denied", _l("Permission denied"),
              _l("Give the integration user the needed rights in the accounting system."),
              transient=False, connector_level=True, stops_batch=True),
    ErrorCode("rate_limited", _l("Rate limited"),
              _l("The accounting system asked us to slow down; records retry automatically."),
              transient=True, connector_level=True, stops_batch=True),
    ErrorCode("system_unavailable", _l("Accounting system unavailable"),
              _l("The accounting system is down or unreachable; records retry automatically."),
              transient=True, connector_level=True, stops_batch=True),
    ErrorCode("timeout", _l("Timeout"),
              _l("The accounting system did not answer in time; records retry automatically."), transient=True),
    ErrorCode("unknown", _l("Unknown error"),
              _l("Read the message; if it persists, contact support with the record reference."), transient=True),
]

ERROR_CODES: dict[str, ErrorCode] = {e.code: e for e in _CODES}


def describe(code: str | None) -> ErrorCode:
    """The error's entry; codes outside the vocabulary read as unknown."""
    return ERROR_CODES.get(code or "unknown", ERROR_CODES["unknown"])


HELD_BACK = frozenset(e.code for e in _CODES if e.connector_level)
"""Causes that raise a connector alert and no per-record alerts."""
CONNECTOR_WIDE = frozenset(e.code for e in _CODES if e.stops_batch)
"""Connector-level causes that affect every record; the others (a closed period) affect some."""
