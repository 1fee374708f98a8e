"""The status screen's attempts chart: successful and failed attempts per hour and per local day."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import HourlyAttemptCount, Organization, utcnow


@dataclass(frozen=True)
class Bucket:
    start: datetime
    """The bucket's start in the organization's time zone."""
    successes: int
    failures: int


@dataclass(frozen=True)
class Series:
    """Attempts per bucket, oldest first, with a scale for drawing."""

    unit: str
    """"hour" or "day"."""
    buckets: list[Bucket]

    @property
    def failures(self) -> int:
        return sum(b.failures for b in self.buckets)

    @property
    def successes(self) -> int:
        return sum(b.successes for b in self.buckets)

    @property
    def scale(self) -> int:
        """A round axis maximum at or above the largest bucket value."""
        peak = max([b.successes for b in self.buckets] + [b.failures for b in self.buckets] + [1])
        magnitude = 1
        while True:
            for base in (1, 2, 5):
                if base * magnitude >= peak:
                    return base * magnitude
            magnitude *= 10


@dataclass(frozen=True)
class Chart:
    hourly: Series
    daily: Series


def attempts_chart(organization: Organization, now: datetime | None = None, hours: int = 24, days: int = 14) -> Chart:
    """Successful and failed attempts per hour over `hours` and per local day over `days`, from the hourly counters."""
    now = now or utcnow()
    zone = ZoneInfo(organization.timezone or "Europe/Oslo")
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    local_today = _to_local(now, zone).date()
    first_day = local_today - timedelta(days=days - 1)
    first_day_utc = datetime.combine(first_day, datetime.min.time(), zone).astimezone(timezone.utc).replace(tzinfo=None)
    start = min(first_day_utc, this_hour - timedelta(hours=hours - 1))
    rows = db.session.execute(
        sa.select(HourlyAttemptCount.hour, HourlyAttemptCount.successes, HourlyAttemptCount.failures)
        .where(HourlyAttemptCount.organization_id == organization.id, HourlyAttemptCount.hour >= start,
               HourlyAttemptCount.hour <= this_hour)
    ).all()
    per_hour = {hour: (successes, failures) for hour, successes, failures in rows}
    hourly = []
    for i in range(hours):
        hour = this_hour - timedelta(hours=hours - 1 - i)
        successes, failures = per_hour.get(hour, (0, 0))
        hourly.append(Bucket(_to_local(hour, zone), successes, failures))
    per_day: dict[date, list[int]] = {first_day + timedelta(days=i): [0, 0] for i in range(days)}
    for hour, (successes, failures) in per_hour.items():
        day = per_day.get(_to_local(hour, zone).date())
        if day is not None:
            day[0] += successes
            day[1] += failures
    daily = [Bucket(datetime.combine(d, datetime.min.time(), zone), s, f) for d, (s, f) in per_day.items()]
    return Chart(Series("hour", hourly), Series("day", daily))


def _to_local(value: datetime, zone: ZoneInfo) -> datetime:
    """A naive UTC time from the database in `zone`."""
    return value.replace(tzinfo=timezone.utc).astimezone(zone)
