"""The daily digest's schedule: at the chosen local time, once per local day, across daylight-saving changes."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from dashboard.mail.digest import due_digest, scheduled_at

OSLO = "Europe/Oslo"
EIGHT = 8 * 60
# 2026: clocks go forward on 29 March (02:00 CET -> 03:00 CEST) and back on 25 October (03:00 CEST -> 02:00 CET).
SPRING, AUTUMN = date(2026, 3, 29), date(2026, 10, 25)


def _sent_minutes(zone: str, minute: int, start: datetime, days: int) -> list[tuple[str, datetime]]:
    """Run the schedule every minute from `start` (that day's digest made then) for `days` days, as the minute job
    does; what it sent, when."""
    sent: list[tuple[str, datetime]] = []
    last = start
    now = start
    while now < start + timedelta(days=days):
        due = due_digest(zone, minute, last, now)
        if due is not None:
            sent.append((due.key, now))
            last = now
        now += timedelta(minutes=1)
    return sent


@pytest.mark.parametrize("day, utc_hour", [
    (SPRING - timedelta(days=1), 7), (SPRING, 6), (SPRING + timedelta(days=1), 6),
    (AUTUMN - timedelta(days=1), 6), (AUTUMN, 7), (AUTUMN + timedelta(days=1), 7),
])
def test_eight_o_clock_in_oslo_is_eight_local_on_both_sides_of_a_change(day: date, utc_hour: int) -> None:
    """Given a digest at 08:00 Europe/Oslo, when the day is next to a daylight-saving change, then it is due at
    08:00 local: 07:00 UTC in winter time, 06:00 UTC in summer time."""
    assert scheduled_at(OSLO, EIGHT, day) == datetime.combine(day, datetime.min.time()).replace(hour=utc_hour)


@pytest.mark.parametrize("start", [datetime(2026, 3, 27, 12, 0), datetime(2026, 10, 23, 12, 0)])
def test_a_digest_every_local_day_once_across_a_change(start: datetime) -> None:
    """Given the minute job running for four days across a change, then exactly one digest a local day is sent,
    each at 08:00 local, none twice."""
    sent = _sent_minutes(OSLO, EIGHT, start, days=4)
    days = [start.date() + timedelta(days=n) for n in range(1, 5)]
    assert [key for key, _ in sent] == [f"digest:{d.isoformat()}" for d in days]
    assert [at for _, at in sent] == [scheduled_at(OSLO, EIGHT, d) for d in days]
    assert {at.hour for _, at in sent} == {6, 7}


def test_a_time_that_does_not_exist_is_sent_at_the_first_instant_after() -> None:
    """Given 02:30 Oslo, which the spring change skips, then that day's digest is due at 03:00 CEST (01:00 UTC),
    once; the days around it at 02:30 local."""
    assert scheduled_at(OSLO, 150, SPRING) == datetime(2026, 3, 29, 1, 0)
    assert scheduled_at(OSLO, 150, SPRING - timedelta(days=1)) == datetime(2026, 3, 28, 1, 30)
    assert scheduled_at(OSLO, 150, SPRING + timedelta(days=1)) == datetime(2026, 3, 30, 0, 30)
    sent = _sent_minutes(OSLO, 150, datetime(2026, 3, 28, 12, 0), days=1)
    assert sent == [("digest:2026-03-29", datetime(2026, 3, 29, 1, 0))]


def test_a_time_repeated_in_autumn_is_sent_once_at_its_first_occurrence() -> None:
    """Given 02:30 Oslo, which the autumn change repeats, then the digest is sent at the first 02:30 (CEST,
    00:30 UTC) and not again at the second."""
    sent = _sent_minutes(OSLO, 150, datetime(2026, 10, 24, 12, 0), days=1)
    assert sent == [("digest:2026-10-25", datetime(2026, 10, 25, 0, 30))]


def test_not_due_before_the_time_nor_after_todays_was_made() -> None:
    """Given a digest at 08:00 Oslo in winter, then it is not due at 06:59 UTC, due at 07:00 with today's key,
    and not due again later that day once made."""
    assert due_digest(OSLO, EIGHT, None, datetime(2026, 11, 30, 6, 59)) is None
    due = due_digest(OSLO, EIGHT, None, datetime(2026, 11, 30, 7, 0))
    assert due is not None and due.key == "digest:2026-11-30"
    assert due_digest(OSLO, EIGHT, datetime(2026, 11, 30, 7, 0), datetime(2026, 11, 30, 22, 0)) is None
    assert due_digest(OSLO, EIGHT, datetime(2026, 11, 30, 7, 0), datetime(2026, 12, 1, 7, 0)) is not None


def test_the_local_date_names_the_digest_not_the_utc_one() -> None:
    """Given a digest at 00:30 in Auckland (UTC+13 in November), then it is due on the previous UTC day and keyed
    by the local date."""
    due = due_digest("Pacific/Auckland", 30, None, datetime(2026, 11, 30, 11, 30))
    assert due is not None and due.key == "digest:2026-12-01"
