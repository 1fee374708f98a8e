"""What every HTTP adapter reads off an accounting system's answer, and how it keeps secrets out of messages."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

REDACTED = "[redacted]"


def redact(text: str, *secrets: str | None) -> str:
    """The text with every given secret replaced, the longest first (a JSON secret before the tokens in it)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; anything else (not JSON, a list) reads as empty."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def status_line(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header, given as delay-seconds or as an HTTP-date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None
