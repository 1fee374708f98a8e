"""Keeping alerts quiet, as plain functions over plain data: no Flask, database or Redis.

An alert is as loud as it is new. DESIGN terms:

- **Re-arming** (rule 2's hysteresis): after an organization's error-threshold alert resolves, a new
  crossing alerts only once the 24-hour failure count has fallen to the re-arm level and then passed the
  threshold again. The first crossing ever alerts at once.
- **Flapping** (every rule): an alert whose fingerprint was raised `raises` times within `window` is
  flapping. Its admins are told once ("keeps coming back"); its later raises and resolutions are gathered
  into that notification until it has stayed resolved for `quiet`.
- **Short-lived**: an alert resolved within `short_lived` of its raise is not announced twice; its
  resolution is gathered into the raise's notification.
- **The budget**: one person is announced at most `budget` notifications a day from one organization;
  the budget's last one is a summary that gathers the rest of the day's.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Sequence


# Re-arming the error threshold --------------------------------------------------------------------------

def rearm_level(threshold: int, configured: int | None) -> int:
    """The count a resolved error-threshold alert waits for: the setting, or half the threshold."""
    return configured if configured is not None else threshold // 2


def rearmed_at(failure_times: Sequence[datetime], since: datetime, until: datetime, window: timedelta,
               level: int) -> datetime | None:
    """The first instant in [since, until] at which the failures within the window ending there are at
    most `level`, or None.

    `failure_times` is sorted and holds every failure in (since - window, until]. A count over a sliding
    window only falls when a failure leaves it, so the instants to look at are `since` and each failure's
    time plus the window.
    """
    def count(at: datetime) -> int:
        return bisect.bisect_right(failure_times, at) - bisect.bisect_right(failure_times, at - window)

    if count(since) <= level:
        return since
    for failed_at in failure_times:
        leaves = failed_at + window
        if leaves <= since:
            continue
        if leaves > until:
            return None
        if count(leaves) <= level:
            return leaves
    return None


# Flapping ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlapPolicy:
    raises: int = 3
    window: timedelta = timedelta(hours=24)
    quiet: timedelta = timedelta(hours=12)
    short_lived: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Recurrence:
    """An earlier alert of the same fingerprint (all are resolved: one is open at a time)."""

    opened_at: datetime
    resolved_at: datetime | None
    flapping: bool


class Flap(StrEnum):
    NO = "no"
    STARTS = "starts"
    """This raise makes the alert flapping: tell its admins once."""
    CONTINUES = "continues"
    """The fingerprint is flapping still (it has not stayed resolved for the quiet period): gather."""


@dataclass(frozen=True)
class FlapState:
    flap: Flap
    since: datetime | None = None
    """The first raise counted (for "keeps coming back: 3 times since 08:00")."""
    times: int = 1


def flap_state(earlier: Sequence[Recurrence], now: datetime, policy: FlapPolicy) -> FlapState:
    """Whether a raise at `now` flaps, given the fingerprint's earlier alerts, oldest first.

    A flapping episode ends when its last alert has stayed resolved for the quiet period; the raises
    counted towards a new episode are those since the last flapping alert, within the window.
    """
    last = earlier[-1] if earlier else None
    if last is not None and last.flapping and (last.resolved_at is None or now - last.resolved_at < policy.quiet):
        return FlapState(Flap.CONTINUES)
    recent: list[Recurrence] = []
    for alert in reversed(earlier):
        if alert.flapping or alert.opened_at <= now - policy.window:
            break
        recent.append(alert)
    times = len(recent) + 1
    if times >= policy.raises:
        return FlapState(Flap.STARTS, since=recent[-1].opened_at, times=times)
    return FlapState(Flap.NO)


def short_lived(opened_at: datetime, resolved_at: datetime, policy: FlapPolicy) -> bool:
    return resolved_at - opened_at <= policy.short_lived


# The daily budget and summaries --------------------------------------------------------------------------

def announces(announced_today: int, budget: int) -> bool:
    """Whether one more notification is announced on its own; the budget's last one is the day's summary."""
    return announced_today < budget - 1


def day_digest_key(organization_id: int, day: date) -> str:
    """The key of one person's summary of an organization's day past the budget."""
    return f"org:{organization_id}:{day.isoformat()}"


def period_digest_key(now: datetime, period: timedelta) -> str:
    """The key of global admins' platform summary for the grouping period holding `now` (periods are
    aligned on the epoch, so every announcement within one lands in the same summary)."""
    seconds = max(int(period.total_seconds()), 1)
    epoch = datetime(1970, 1, 1)
    start = epoch + timedelta(seconds=(int((now - epoch).total_seconds()) // seconds) * seconds)
    return f"platform:{start.isoformat(timespec='seconds')}"


def digest_organization(digest_key: str) -> int | None:
    """The organization of an organization's day summary; None for a platform summary."""
    kind, _, rest = digest_key.partition(":")
    return int(rest.split(":", 1)[0]) if kind == "org" else None
