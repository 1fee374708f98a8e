"""The one small interface every accounting-system adapter implements, and what a settings check returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class OutgoingRecord:
    """What an adapter needs to book one approved record."""

    source_ref: str
    record_type: str
    amount_minor: int
    currency: str
    approved_at: datetime
    volunteer: str = ""
    volunteer_ref: str | None = None
    """The platform's reference for who is owed the money, when known."""
    description: str = ""
    attempt_number: int = 1
    """1 for the record's first push since its last success; lets simulations be reproducible."""


@dataclass(frozen=True)
class PushResult:
    ok: bool
    external_id: str | None = None
    error_code: str | None = None
    message: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    """Seconds the accounting system asked us to wait (HTTP Retry-After)."""

    @classmethod
    def success(cls, external_id: str) -> "PushResult":
        return cls(ok=True, external_id=external_id)

    @classmethod
    def failure(cls, code: str, message: str, retryable: bool, retry_after: float | None = None) -> "PushResult":
        return cls(ok=False, error_code=code, message=message[:1000], retryable=retryable, retry_after=retry_after)


class Adapter(Protocol):
    def push(self, record: OutgoingRecord) -> PushResult:
        """Book one record in the accounting system; never raises for accounting-side errors."""
        ...


class PreFlight(Protocol):
    """An adapter that can tell, before pushing, which records the accounting system would refuse as a batch
    (records dated in a closed accounting period): they are held back, not pushed, and logged as failed."""

    def hold_back(self, records: list[OutgoingRecord]) -> dict[str, PushResult]:
        """The failure of each record to hold back, by source reference; the others are pushed."""
        ...


@dataclass(frozen=True)
class CheckedSettings:
    """A provider's reading of its settings form: the settings to save, and what is wrong with them."""

    settings: dict[str, Any]
    problems: list[tuple[str, str]] = field(default_factory=list)
    """(field name, message) pairs, shown beside their field; nothing is saved while there are any."""


@dataclass(frozen=True)
class CheckLine:
    """One thing a connection check tried: what, in words for the administrator, and whether it worked."""

    ok: bool
    text: str


@dataclass(frozen=True)
class ConnectionCheck:
    """What a provider's connection check found (issue 13, item 4): never holds a secret.

    `ok` is True when every line passed; `lines` say what was checked, in order, and what failed.
    """

    ok: bool
    lines: tuple[CheckLine, ...] = ()

    @classmethod
    def of(cls, lines: list[CheckLine]) -> "ConnectionCheck":
        return cls(ok=bool(lines) and all(line.ok for line in lines), lines=tuple(lines))

    def failures(self) -> list[str]:
        return [line.text for line in self.lines if not line.ok]

    def redacted(self, *secrets: str | None) -> "ConnectionCheck":
        """The same check with every given secret (and nothing else) replaced by [redacted]."""
        from dashboard.sync.connectors.answers import redact

        return ConnectionCheck(self.ok, tuple(CheckLine(line.ok, redact(line.text, *secrets)) for line in self.lines))
