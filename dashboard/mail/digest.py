"""When a person's daily digest is due: once per local day, at their chosen local wall-clock time.

Plain Python (no Flask, no database), so the schedule is tested across daylight-saving changes on its own.
All instants in and out are naive UTC, as the database keeps them.

The digest of a local day is due from the first instant whose local wall-clock time is at or after the chosen
time on that day: exactly that time on an ordinary day, the first occurrence of a time repeated when clocks go
back, and the end of the gap (the first instant after) for a time that does not exist when clocks go forward.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60
KEY_PREFIX = "digest:"


@dataclass(frozen=True)
class DueDigest:
    key: str
    """`digest:YYYY-MM-DD`, the local date: one digest per person and key (the database's unique constraint)."""
    scheduled_at: datetime
    """The instant (naive UTC) the day's digest became due."""


def digest_key(day: date) -> str:
    return f"{KEY_PREFIX}{day.isoformat()}"


def wall_clock(minute: int) -> time:
    """Minutes after midnight as a time of day; refuses values outside one day."""
    if not 0 <= minute < MINUTES_PER_DAY:
        raise ValueError(f"a digest minute is from 0 to {MINUTES_PER_DAY - 1}, not {minute}")
    return time(minute // 60, minute % 60)


def scheduled_at(zone_name: str, minute: int, day: date) -> datetime:
    """The instant (naive UTC) the digest of local `day` is due: the first instant at or after the local time."""
    zone = ZoneInfo(zone_name)
    wall = datetime.combine(day, wall_clock(minute))
    # fold 0 and fold 1 differ only around a change: the earlier is the first occurrence of a repeated time,
    # or (in a gap) an instant before the gap, from which the first instant reaching the wall time is found.
    candidate = min(_utc(wall.replace(tzinfo=zone, fold=fold)) for fold in (0, 1))
    candidate = candidate.replace(second=0, microsecond=0)
    while _local(candidate, zone) < wall:
        candidate += timedelta(minutes=1)
    return candidate


def due_digest(zone_name: str, minute: int, last_sent_at: datetime | None, now: datetime) -> DueDigest | None:
    """The digest due at `now` (naive UTC), or None: not yet today's time, or today's was made already."""
    today = _local(now, ZoneInfo(zone_name)).date()
    due_from = scheduled_at(zone_name, minute, today)
    if now < due_from or (last_sent_at is not None and last_sent_at >= due_from):
        return None
    return DueDigest(key=digest_key(today), scheduled_at=due_from)


def _utc(aware: datetime) -> datetime:
    return aware.astimezone(timezone.utc).replace(tzinfo=None)


def _local(naive_utc: datetime, zone: ZoneInfo) -> datetime:
    return naive_utc.replace(tzinfo=timezone.utc).astimezone(zone).replace(tzinfo=None)
