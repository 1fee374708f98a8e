"""What the rules read of the sync log: bounded by the batch (or a record's streak, or a connector's last
hours), never by an organization's history."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from dashboard.alerts import rules
from dashboard.extensions import db
from dashboard.models import SyncAttempt, SyncBatch, SyncRecord
from dashboard.vocabulary import AttemptOutcome


def batch_facts(batch_id: int) -> list[rules.AttemptFact]:
    """The batch's failed attempts in log order, late ones left out: the only attempts the rules read."""
    rows = db.session.execute(_BATCH_FAILURES, {"batch_id": batch_id}).all()
    return [rules.AttemptFact(attempt_id, record_id, record_type, attempted_at, outcome == AttemptOutcome.FAILURE,
                              error_code, failure_streak)
            for attempt_id, record_id, record_type, attempted_at, outcome, error_code, failure_streak in rows]


_BATCH_FAILURES = (sa.select(SyncAttempt.id, SyncAttempt.record_id, SyncRecord.record_type, SyncAttempt.attempted_at,
                             SyncAttempt.outcome, SyncAttempt.error_code, SyncAttempt.failure_streak)
                   .join(SyncRecord, SyncRecord.id == SyncAttempt.record_id)
                   .where(SyncAttempt.batch_id == sa.bindparam("batch_id"),
                          SyncAttempt.outcome == AttemptOutcome.FAILURE, SyncAttempt.late.is_(False))
                   .order_by(SyncAttempt.attempted_at, SyncAttempt.id))
"""This module's statements that every evaluation runs are built once, with bind parameters: building one and
its cache key costs more CPU than SQLite takes to run it."""


def failures_around(organization_id: int, keys: list[tuple[datetime, int]], threshold: int
                     ) -> list[tuple[datetime, int]]:
    """The organization's failures from the (threshold + 1)th before the first key to the last key.

    Two index range reads on (organization_id, attempted_at, id) WHERE failure:
    at most threshold + 1 rows before, and the failures between the batch's
    first and last, whatever the size of the history.
    """
    first, last = min(keys), max(keys)
    before = db.session.execute(_FAILURES_BEFORE, {"organization_id": organization_id, "time": first[0],
                                                   "id": first[1], "rows": threshold + 1}).all()
    between = db.session.execute(_FAILURES_BETWEEN, {"organization_id": organization_id, "first": first[0],
                                                     "last": last[0]}).all()
    merged = {(t, i) for t, i in before} | {(t, i) for t, i in between if (t, i) >= first}
    return sorted(merged)


_FAILURE = sa.and_(SyncAttempt.organization_id == sa.bindparam("organization_id"),
                   SyncAttempt.outcome == AttemptOutcome.FAILURE)
_FAILURES_BEFORE = (sa.select(SyncAttempt.attempted_at, SyncAttempt.id)
                    .where(_FAILURE, sa.or_(SyncAttempt.attempted_at < sa.bindparam("time"),
                                            sa.and_(SyncAttempt.attempted_at == sa.bindparam("time"),
                                                    SyncAttempt.id < sa.bindparam("id"))))
                    .order_by(SyncAttempt.attempted_at.desc(), SyncAttempt.id.desc()).limit(sa.bindparam("rows")))
_FAILURES_BETWEEN = (sa.select(SyncAttempt.attempted_at, SyncAttempt.id)
                     .where(_FAILURE, SyncAttempt.attempted_at >= sa.bindparam("first"),
                            SyncAttempt.attempted_at <= sa.bindparam("last"))
                     .order_by(SyncAttempt.attempted_at, SyncAttempt.id))


def records_failed_between(organization_id: int, start: datetime, end: tuple[datetime, int]) -> list[int]:
    """Records with a failed attempt in the window (start, end]: the affected set of a new error-threshold alert."""
    return list(db.session.scalars(
        sa.select(SyncAttempt.record_id).where(
            SyncAttempt.organization_id == organization_id, SyncAttempt.outcome == AttemptOutcome.FAILURE,
            SyncAttempt.attempted_at > start,
            sa.or_(SyncAttempt.attempted_at < end[0],
                   sa.and_(SyncAttempt.attempted_at == end[0], SyncAttempt.id <= end[1])))
        .distinct()
    ))


def batch_outcomes(batch_id: int) -> list[tuple[datetime, int, str | None]]:
    """Every on-time attempt of the batch in log order, as (time, record, error code or None for a success)."""
    return list(db.session.execute(
        sa.select(SyncAttempt.attempted_at, SyncAttempt.record_id, SyncAttempt.error_code)
        .where(SyncAttempt.batch_id == batch_id, SyncAttempt.late.is_(False))
        .order_by(SyncAttempt.attempted_at, SyncAttempt.id)
    ).tuples())


def earlier_in_streak(fact: rules.AttemptFact) -> list[str | None]:
    """The error codes of the failures before this one in its record's streak, oldest first (at most a
    streak's length of rows, read through the (record, time) unique index)."""
    codes = db.session.scalars(
        sa.select(SyncAttempt.error_code)
        .where(SyncAttempt.record_id == fact.record_id, SyncAttempt.late.is_(False),
               SyncAttempt.attempted_at < fact.attempted_at)
        .order_by(SyncAttempt.attempted_at.desc()).limit(fact.failure_streak - 1)
    ).all()
    return list(reversed(codes))


def rate_limited_since(connector_id: int, until: datetime, lookback: timedelta) -> datetime | None:
    """When the connector's current run of rate-limited answers began (None if the attempt at `until`
    ended no such run); looks back at most `lookback`."""
    attempts = (sa.select(SyncAttempt.attempted_at, SyncAttempt.error_code)
                .join(SyncBatch, SyncBatch.id == SyncAttempt.batch_id)
                .where(SyncBatch.connector_id == connector_id, SyncAttempt.late.is_(False),
                       SyncAttempt.attempted_at <= until, SyncAttempt.attempted_at > until - lookback)
                .order_by(SyncAttempt.attempted_at.desc()))
    began = None
    for attempted_at, error_code in db.session.execute(attempts):
        if error_code != rules.RATE_LIMITED:
            break
        began = attempted_at
    return began


def failure_times(organization_id: int, after: datetime, until: datetime) -> list[datetime]:
    """The times of the organization's failures in (after, until], in order (the re-arm check's count)."""
    return list(db.session.scalars(
        sa.select(SyncAttempt.attempted_at).where(
            SyncAttempt.organization_id == organization_id, SyncAttempt.outcome == AttemptOutcome.FAILURE,
            SyncAttempt.attempted_at > after, SyncAttempt.attempted_at <= until)
        .order_by(SyncAttempt.attempted_at)
    ))
