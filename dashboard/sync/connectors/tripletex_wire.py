"""What Tripletex (API v2) answers and how it maps onto our error vocabulary, and the wire's small formats.

Holds the answer and failure types a request ends in (`Answer`, `Unanswered`, `Failed`), `failure` (the error
envelope `{status, code, message, developerMessage, validationMessages[], requestId}` mapped onto the error
vocabulary, the requestId kept in the message for Tripletex support), the envelope's text, the retry-after
seconds, JSON with exact decimals, and the helpers for kroner, Oslo dates and the session's Basic auth.
"""
from __future__ import annotations

import base64
import http.client
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.sync.connectors.base import OutgoingRecord, PushResult

OSLO = ZoneInfo("Europe/Oslo")


class Unanswered(Exception):
    """No HTTP answer: the request may or may not have been carried out."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        """`timeout` (sent, no answer: a timeout or a dropped connection) or `unreachable` (never connected)."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: dict[str, Any]


class Failed(Exception):
    """A request's outcome that ends the push: the result to report."""

    def __init__(self, result: PushResult) -> None:
        super().__init__(result.message)
        self.result = result


# --- answers ----------------------------------------------------------------------------------------------


def failure(answer: Answer, session: bool = False) -> PushResult:
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


_DECIMAL = re.compile(r'"\\u0000decimal:(-?\d+(?:\.\d+)?)"')


def json_with_decimals(body: dict[str, Any]) -> bytes:
    """JSON with Decimals written as exact numbers (json would need floats)."""
    def tagged(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"\0decimal:{value}"
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(body, ensure_ascii=False, default=tagged)
    return _DECIMAL.sub(r"\1", text).encode("utf-8")


def basic_auth(session_token: str) -> str:
    return "Basic " + base64.b64encode(f"0:{session_token}".encode()).decode("ascii")


def kroner(amount_minor: int) -> Decimal:
    """Øre as kroner, exactly."""
    return (Decimal(amount_minor) / 100).quantize(Decimal("0.01"))


def voucher_date(record: OutgoingRecord) -> date:
    """The approval's date in Oslo (naive times are UTC, as the database stores them)."""
    moment = record.approved_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(OSLO).date()


def midnight(day: date) -> datetime:
    """Midnight in Oslo at the start of `day`."""
    return datetime.combine(day, time(0), OSLO)

