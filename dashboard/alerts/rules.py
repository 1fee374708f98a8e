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

def crossed_consecutive(failure_streak: int, threshold: int) -> bool:
    """True for the attempt that makes a record's failure streak reach the threshold."""
    return failure_streak == threshold


def consecutive_fingerprint(organization_id: int, record_type: str, error_code: str) -> str:
    return f"org:{organization_id}:{CONSECUTIVE}:{record_type}:{error_code}"


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
