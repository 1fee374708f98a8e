"""A simulated accounting system: the default connector for the demo and the tests.

A connector's `settings["scenario"]` picks how the system behaves. Every decision
is a function of the settings and the record alone (never the clock, the process
or Python's salted `hash()`), so a demo run or a test can be replayed exactly.

Settings:
- `scenario`: one of `SCENARIOS` (default `healthy`).
- `record_type`: the record type that fails: its period is locked (`period_locked`) or its VAT code is
  invalid (`invalid_vat_code`); required by both.
- `share`: the share of records that fail, from 0 to 1 (`mapping_missing`, default 0.2;
  `flaky`, required).
- `seed`: varies which records fail (`mapping_missing`, `flaky`; default 0).
- `retry_after`: seconds the system asks callers to wait (`rate_limited`, default 30).

Besides the adapter: how the settings form reads these settings (`check_form`) and
what the connector panel shows of them (`summary`), for the provider registry.
"""
from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from dashboard.sync.connectors.base import CheckedSettings, OutgoingRecord, PushResult
from dashboard.vocabulary import RecordType, values

SCENARIOS = {
    "healthy": _l("Healthy: every record is booked"),
    "period_locked": _l("Accounting period locked for one record type"),
    "invalid_vat_code": _l("Invalid VAT code for one record type"),
    "mapping_missing": _l("Account mapping missing for a share of records"),
    "credentials_expired": _l("Credentials expired"),
    "rate_limited": _l("Rate limited, with Retry-After"),
    "flaky": _l("Flaky: a share of pushes fail for a while"),
    "down": _l("Accounting system down"),
}
"""Each scenario's name and label: the one table of them."""
DEFAULT_SCENARIO = "healthy"
DEFAULT_MAPPING_MISSING_SHARE = 0.2
DEFAULT_RETRY_AFTER = 30.0
SETTINGS_FIELDS = ("scenario", "record_type", "share", "seed", "retry_after")
_NUMBERS: dict[str, type] = {"share": float, "retry_after": float, "seed": int}
_RECORD_TYPES = values(RecordType)
_ONE_RECORD_TYPE = {"period_locked": "the record type whose period is locked",
                    "invalid_vat_code": "the record type whose VAT code is invalid"}
"""The scenarios that fail one record type, each with what its `record_type` setting names."""

_UNAVAILABLE = PushResult.failure(
    "system_unavailable", "503 Service Unavailable: the ledger service is temporarily unavailable, try again later",
    retryable=True)
_TIMEOUT = PushResult.failure(
    "timeout", "No answer from the ledger service within 30 seconds; the voucher was not posted", retryable=True)
_DOWN = PushResult.failure(
    "system_unavailable", "503 Service Unavailable: the accounting system is down for scheduled maintenance",
    retryable=True)
_CREDENTIALS_EXPIRED = PushResult.failure(
    "credentials_expired", "401 Unauthorized: the API token has expired; issue a new token for the integration user",
    retryable=False)


class SandboxAdapter:
    """Books records in memory and fails them the way the configured scenario says."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        problems = validate_settings(settings)
        if problems:
            raise ValueError(" ".join(problems))
        self.scenario: str = settings.get("scenario", DEFAULT_SCENARIO)
        self.record_type: str | None = settings.get("record_type")
        self.share = float(settings.get("share", DEFAULT_MAPPING_MISSING_SHARE))
        self.seed = str(settings.get("seed", 0))
        self.retry_after = float(settings.get("retry_after", DEFAULT_RETRY_AFTER))

    def push(self, record: OutgoingRecord) -> PushResult:
        return self._failure(record) or PushResult.success(f"SBX-{record.source_ref}")

    def _failure(self, record: OutgoingRecord) -> PushResult | None:
        """The scenario's failure for this record, or None when the system books it."""
        match self.scenario:
            case "period_locked" if record.record_type == self.record_type:
                return _period_locked(record)
            case "invalid_vat_code" if record.record_type == self.record_type:
                return _invalid_vat_code(record)
            case "mapping_missing" if _stable_fraction(f"{self.seed}:{record.source_ref}") < self.share:
                return _mapping_missing(record)
            case "credentials_expired":
                return _CREDENTIALS_EXPIRED
            case "rate_limited":
                return _rate_limited(self.retry_after)
            case "flaky":
                return self._flaky(record)
            case "down":
                return _DOWN
        return None

    def _flaky(self, record: OutgoingRecord) -> PushResult | None:
        """A transient failure for `share` of the pushes; the attempt number is in the seed so a retry can pass."""
        rng = random.Random(f"{self.seed}:{record.source_ref}:{record.attempt_number}")
        if rng.random() >= self.share:
            return None
        return rng.choice((_UNAVAILABLE, _TIMEOUT))


def check_form(fields: Mapping[str, str], saved: Mapping[str, Any]) -> CheckedSettings:
    """The settings form's fields as sandbox settings, which replace the saved ones; a problem names its field."""
    settings: dict[str, Any] = {"scenario": fields["scenario"]}
    if fields["record_type"]:
        settings["record_type"] = fields["record_type"]
    problems: list[tuple[str, str]] = []
    for name, kind in _NUMBERS.items():
        if fields[name]:
            try:
                settings[name] = kind(fields[name])
            except ValueError:
                problems.append((name, _("Enter a number.") if kind is float else _("Enter a whole number.")))
    if not problems:
        problems = [("scenario", problem) for problem in validate_settings(settings)]
    return CheckedSettings(settings, problems)


def summary(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the connector panel shows of a sandbox's settings: its scenario."""
    scenario = settings.get("scenario", DEFAULT_SCENARIO)
    return [(_("Sandbox scenario"), str(SCENARIOS.get(scenario, scenario)))]


def validate_settings(settings: Mapping[str, Any]) -> list[str]:
    """Human-readable problems with a sandbox connector's settings; empty when they are usable."""
    scenario = settings.get("scenario", DEFAULT_SCENARIO)
    problems: list[str] = []
    if scenario not in SCENARIOS:
        problems.append(f"Unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}.")
    if scenario == "flaky" and "share" not in settings:
        problems.append("The flaky scenario needs a share of failing pushes between 0 and 1.")
    elif "share" in settings and not _is_number(settings["share"], low=0, high=1):
        problems.append(f"Share must be a number between 0 and 1, not {settings['share']!r}.")
    if scenario in _ONE_RECORD_TYPE and "record_type" not in settings:
        problems.append(f"The {scenario} scenario needs {_ONE_RECORD_TYPE[scenario]}.")
    elif "record_type" in settings and settings["record_type"] not in _RECORD_TYPES:
        problems.append(f"Unknown record type {settings['record_type']!r}: choose one of {', '.join(_RECORD_TYPES)}.")
    if "retry_after" in settings and not _is_number(settings["retry_after"], low=0):
        problems.append(f"Retry-After must be a number of seconds of 0 or more, not {settings['retry_after']!r}.")
    return problems


def _is_number(value: Any, low: float, high: float = float("inf")) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and low <= value <= high


def _stable_fraction(key: str) -> float:
    """A number in [0, 1) that depends only on `key`, the same in every process."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _period_locked(record: OutgoingRecord) -> PushResult:
    return PushResult.failure(
        "period_locked",
        f"Period {record.approved_at:%Y-%m} is locked for posting; voucher {record.source_ref} was rejected",
        retryable=False)


def _invalid_vat_code(record: OutgoingRecord) -> PushResult:
    return PushResult.failure(
        "invalid_vat_code",
        f"VAT code 7 is not valid for account 7140; voucher {record.source_ref} was rejected",
        retryable=False)


def _mapping_missing(record: OutgoingRecord) -> PushResult:
    return PushResult.failure(
        "account_mapping_missing",
        f"No ledger account is mapped for record type {record.record_type}; voucher {record.source_ref} was rejected",
        retryable=False)


def _rate_limited(retry_after: float) -> PushResult:
    return PushResult.failure(
        "rate_limited", f"429 Too Many Requests: request limit exceeded, retry after {retry_after:g} seconds",
        retryable=True, retry_after=retry_after)
