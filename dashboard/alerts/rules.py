"""The alert rules as plain functions over plain data: no Flask, database or Redis.

DESIGN.md ("Alert rules") states the semantics; each function here decides one
thing, and the engine loads the facts and writes what they decide.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

CONSECUTIVE = "consecutive_failures"
ERROR_THRESHOLD = "error_threshold"
STALE = "stale_sync"
CONNECTOR = "connector_failing"
PLATFORM = "platform_incident"


@dataclass(frozen=True)
class AttemptFact:
    """What the rules need of one logged attempt."""

    id: int
    record_id: int
    record_type: str
    attempted_at: datetime
    failed: bool
    error_code: str | None
    failure_streak: int

    @property
    def key(self) -> tuple[datetime, int]:
        """The log's order: time, then id for attempts logged at the same instant."""
        return (self.attempted_at, self.id)


# Rule 1: a record keeps failing.

def consecutive_fingerprint(organization_id: int, record_type: str, error_code: str) -> str:
    return f"org:{organization_id}:{CONSECUTIVE}:{record_type}:{error_code}"


def first_alertable_crossing(fact: AttemptFact, threshold: int, held_back: set[str | None],
                             earlier_in_streak: Sequence[str | None]) -> bool:
    """True for the failure that alerts under rule 1: the first of its streak, at or past the threshold,
    whose error is not held back by a connector alert.

    A streak reaches the threshold once; when the failures that took it there were held back (their
    cause is the connector's, alerted once for the connector), the record's next failure for a cause
    of its own alerts instead, or it never would. `earlier_in_streak` holds the error codes of the
    streak's earlier failures, oldest first (the attempt with streak 1 first).
    """
    if not fact.failed or fact.error_code in held_back or fact.failure_streak < threshold:
        return False
    from_threshold = earlier_in_streak[threshold - 1:]
    return all(code in held_back for code in from_threshold)


# Connector-level causes: one alert per connector and cause, holding back the per-record alerts it causes.

def connector_fingerprint(organization_id: int, connector_id: int, error_code: str) -> str:
    return f"org:{organization_id}:{CONNECTOR}:{connector_id}:{error_code}"


def connector_cause_alerts(error_code: str, rate_limited_for: timedelta | None, patience: timedelta) -> bool:
    """Whether a connector-level failure raises its connector alert now: at once, except a rate limit,
    which alerts once it has lasted `patience` (the accounting system is only asking us to slow down)."""
    if error_code != RATE_LIMITED:
        return True
    return rate_limited_for is not None and rate_limited_for >= patience


def connector_recovered(cause: str, later_outcomes: Iterable[str | None]) -> bool:
    """A connector alert resolves when the connector answers otherwise: a success (None) or another error."""
    return any(code != cause for code in later_outcomes)


RATE_LIMITED = "rate_limited"


# Rule 2: the organization's failures within a sliding window pass the threshold.

def threshold_fingerprint(organization_id: int) -> str:
    return f"org:{organization_id}:{ERROR_THRESHOLD}"


def threshold_crossing(
    failures: Sequence[tuple[datetime, int]],
    candidates: Iterable[tuple[datetime, int]],
    threshold: int,
    window: timedelta,
) -> tuple[datetime, int] | None:
    """The first candidate failure that is the (threshold + 1)th within the window ending at it.

    `failures` holds, in log order, every failure of the organization from the
    (threshold + 1)th before the first candidate up to the last candidate; that
    is all a count needs to look at. Anchoring the window on the attempt itself
    makes re-evaluation, late or out of order, give the same answer.
    """
    position = {key: i for i, key in enumerate(failures)}
    for key in sorted(candidates):
        i = position[key]
        window_start = key[0] - window
        count = 0
        j = i
        while j >= 0 and failures[j][0] > window_start and count <= threshold + 1:
            count += 1
            j -= 1
        if count == threshold + 1:
            return key
    return None


# Rule 3: approved records wait too long on an enabled connector.

def stale_fingerprint(organization_id: int, connector_id: int) -> str:
    return f"org:{organization_id}:{STALE}:{connector_id}"


def stale_cutoff(now: datetime, stale_after_hours: int) -> datetime:
    """Records approved before this instant have waited more than the threshold.

    A record is stale when it waits (`dashboard.vocabulary.WAITING_STATUSES`) and was approved
    before the cutoff; the engine applies that as SQL (`_apply_stale`).
    """
    return now - timedelta(hours=stale_after_hours)


# Rule 4, resolution, is stated where it is applied: an open alert resolves when none of its records
# is outside `dashboard.vocabulary.CLEARED_STATUSES` (the engine's `_resolve_cleared`).


# Rule 5: the platform incident and what global admins hear.

PLATFORM_FINGERPRINT = f"platform:{PLATFORM}"


def platform_action(alerting_organizations: int, minimum: int, platform_open: bool) -> str | None:
    """'open', 'update', 'resolve' or None for the platform alert, given how many organizations alert."""
    if not platform_open:
        return "open" if alerting_organizations >= minimum else None
    return "update" if alerting_organizations > 0 else "resolve"


def global_announcement(rule: str, alert_open: bool, platform_open: bool) -> str:
    """When the grouping wait ends: 'notify' global admins, 'fold' into the platform alert, or 'drop'.

    What resolved within the wait is never announced; an organization's
    error-threshold alert reaches global admins alone only while no platform
    alert is open.
    """
    if not alert_open:
        return "drop"
    if rule == PLATFORM:
        return "notify"
    return "fold" if platform_open else "notify"
