"""Maintenance windows: when an organization expects failures, alerts they match notify nobody.

The rules are plain functions over `Span` (a window's times and what it covers), so the form, the writer
and the tests share them. An empty set of codes or record types means "all of them".

A new window may start in the past (closing began an hour ago) as long as it ends in the future; it mutes
only alerts raised from when it is saved: alerts already raised were told of already.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Alert, MaintenanceWindow


@dataclass(frozen=True)
class Span:
    """What a window covers: when (`starts_at` included, `ends_at` excluded) and which failures."""

    starts_at: datetime
    ends_at: datetime
    error_codes: frozenset[str] = frozenset()
    record_types: frozenset[str] = frozenset()

    @classmethod
    def of(cls, window: MaintenanceWindow) -> "Span":
        return cls(window.starts_at, window.ends_at, frozenset(window.error_codes or ()),
                   frozenset(window.record_types or ()))


class Problem:
    """Why a new window is refused (the form words each)."""

    END_NOT_AFTER_START = "end_not_after_start"
    END_IN_PAST = "end_in_past"


def problems(span: Span, now: datetime) -> list[str]:
    """What is wrong with a new window's times: its end must be after its start and after now."""
    found = []
    if span.ends_at <= span.starts_at:
        found.append(Problem.END_NOT_AFTER_START)
    if span.ends_at <= now:
        found.append(Problem.END_IN_PAST)
    return found


def _sets_meet(a: frozenset[str], b: frozenset[str]) -> bool:
    """Two coverage sets share something: either is "all", or they have a member in common."""
    return not a or not b or bool(a & b)


def overlap(a: Span, b: Span) -> bool:
    """Two windows of one organization overlap when their times, codes and record types all intersect."""
    return (a.starts_at < b.ends_at and b.starts_at < a.ends_at
            and _sets_meet(a.error_codes, b.error_codes) and _sets_meet(a.record_types, b.record_types))


def overlapping(new: Span, existing: Iterable[tuple[int, Span]]) -> list[int]:
    """The ids of the existing windows the new one overlaps."""
    return [window_id for window_id, span in existing if overlap(new, span)]


def is_open(span: Span, now: datetime) -> bool:
    return span.starts_at <= now < span.ends_at


def matches(span: Span, error_code: str | None, record_type: str | None, now: datetime) -> bool:
    """An alert matches a window open at `now` that covers its error code and record type; an alert
    without an error code (or record type) matches only a window covering all codes (or types)."""
    if not is_open(span, now):
        return False
    code_ok = not span.error_codes or (error_code is not None and error_code in span.error_codes)
    type_ok = not span.record_types or (record_type is not None and record_type in span.record_types)
    return code_ok and type_ok


def muting_window(alert: Alert, now: datetime) -> MaintenanceWindow | None:
    """The organization's window open at `now` that matches the alert's error code and record type, if any.

    Called for every raised alert: one query on `ix_maintenance_windows_org_ends` (windows ending after now
    are few). Platform alerts are never muted."""
    if alert.organization_id is None:
        return None
    windows = db.session.scalars(
        sa.select(MaintenanceWindow)
        .where(MaintenanceWindow.organization_id == alert.organization_id, MaintenanceWindow.ends_at > now,
               MaintenanceWindow.starts_at <= now)
        .order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
    ).all()
    return next((w for w in windows if matches(Span.of(w), alert.error_code, alert.record_type, now)), None)
