"""When a failing record is pushed again: the automatic retry policy, as plain functions.

Transient errors come back sooner than permanent ones, a Retry-After from the
accounting system wins, and with the defaults a failing record reaches its
third attempt within an hour (permanent: +5 min, then +15 min). After the
maximum of automatic attempts the record waits for an administrator.
"""
from __future__ import annotations

from datetime import datetime, timedelta

TRANSIENT_DELAYS = (60, 120, 240, 480, 960)
PERMANENT_DELAYS = (300, 900, 1800, 3600, 7200)


def next_attempt_at(
    now: datetime,
    transient: bool,
    auto_attempts: int,
    max_auto_attempts: int,
    retry_after: float | None = None,
    delay_scale: float = 1.0,
) -> datetime | None:
    """The time of the next automatic attempt, or None when the record must wait for an administrator.

    `auto_attempts` counts the automatic attempts made so far, including the one that just failed.
    `delay_scale` compresses the schedule for demos (RETRY_DELAY_SCALE); a Retry-After is never shortened.
    """
    if auto_attempts >= max_auto_attempts:
        return None
    delays = TRANSIENT_DELAYS if transient else PERMANENT_DELAYS
    delay = delays[min(auto_attempts, len(delays)) - 1] * delay_scale
    if retry_after is not None and retry_after > 0:
        delay = retry_after
    return now + timedelta(seconds=delay)
