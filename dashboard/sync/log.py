"""The one place that writes the sync log.

A batch's attempts, the records' new state, the hourly counters and the batch
row are written together by :func:`record_batch`; the caller commits them in
one transaction. Each attempt stores the record's failure streak as of that
attempt, so the alert rules read crossings from the log.

The log is read in attempt-time order. An attempt older than its record's
newest when it arrives is *late*: it is logged (and shown in the record's
history) but changes neither the record's state nor any streak, so it can
neither raise nor resolve an alert.

The rows are written as plain tuples in the driver's form
(`dashboard.sync.log_statements`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from dashboard.extensions import db
from dashboard.models import Connector, SyncAttempt, SyncBatch, SyncRecord
from dashboard.sync.errors import describe
from dashboard.sync.log_statements import (
    bind_processor, executemany, hourly_upsert, insert_sql, select_records, update_sql,
)
from dashboard.sync.retry import next_attempt_at
from dashboard.vocabulary import AttemptOutcome, RecordStatus

ATTEMPT_COLUMNS = ("organization_id", "batch_id", "record_id", "attempted_at", "outcome", "error_code",
                   "error_message", "failure_streak", "late", "triggered_by_id")
WRITTEN_WHEN_CHANGED = ("status", "last_error_code", "next_attempt_at", "retry_requested_by_id")
"""Record columns a record's UPDATE names only when their value changes (a success of a synced record leaves
them alone): SQLite does the work of a named column even when its value stays. The first three are in
sync_records' indexes (the status screen's filters and sorts, the due retries), and naming one rewrites the
entries of every index that holds it; naming the foreign key `retry_requested_by_id`, even to set NULL again,
made an UPDATE that changes the status cost 1.7 times as much (measured on SQLite)."""


@dataclass(frozen=True)
class Outcome:
    """The result of one push of one record."""

    record_id: int
    attempted_at: datetime
    ok: bool
    external_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    triggered_by_id: int | None = None


@dataclass(slots=True)
class _RecordState:
    status: str
    consecutive_failures: int
    auto_attempts: int
    newest_attempt_at: datetime | None
    stored: tuple
    """The columns of WRITTEN_WHEN_CHANGED as stored before this batch."""


SUCCESS, FAILURE = AttemptOutcome.SUCCESS.value, AttemptOutcome.FAILURE.value
SYNCED, FAILED, EXCLUDED = RecordStatus.SYNCED.value, RecordStatus.FAILED.value, RecordStatus.EXCLUDED.value
HOUR = timedelta(hours=1)


def record_batch(
    connector: Connector,
    outcomes: Iterable[Outcome],
    *,
    source: str,
    started_at: datetime,
    finished_at: datetime,
    max_auto_attempts: int,
    retry_delay_scale: float = 1.0,
    stopped_reason: str | None = None,
    idempotency_key: str | None = None,
) -> SyncBatch:
    """Write a batch and its attempts, and move each record to its new state. Does not commit.

    Outcomes are applied in attempt-time order; each (record, time) must be new to the log.
    """
    outcomes = sorted(outcomes, key=lambda o: o.attempted_at)
    batch = SyncBatch(
        organization_id=connector.organization_id, connector_id=connector.id, source=source,
        started_at=started_at, finished_at=finished_at, attempt_count=len(outcomes),
        failure_count=sum(1 for o in outcomes if not o.ok), stopped_reason=stopped_reason,
        idempotency_key=idempotency_key,
    )
    db.session.add(batch)
    db.session.flush()

    states = _load_states({o.record_id for o in outcomes})
    stamp = bind_processor(SyncAttempt.__table__.c.attempted_at)
    late, not_late = (bind_processor(SyncAttempt.__table__.c.late)(flag) for flag in (True, False))
    organization_id, batch_id = connector.organization_id, batch.id
    attempts: list[tuple] = []
    updates: dict[int, dict[str, Any]] = {}
    hours: dict[datetime, list[int]] = {}
    hour = hour_end = counter = None
    last_success: datetime | None = None
    for o in outcomes:
        state = states[o.record_id]
        attempted_at = o.attempted_at
        if hour_end is None or attempted_at >= hour_end:  # in time order: a new hour starts here
            hour = attempted_at.replace(minute=0, second=0, microsecond=0)
            hour_end = hour + HOUR
            counter = hours.setdefault(hour, [0, 0])
        at = stamp(attempted_at)
        if o.ok:
            counter[0] += 1
            error = message = None
            outcome = SUCCESS
        else:
            counter[1] += 1
            error = describe(o.error_code)
            outcome = FAILURE
            message = (o.error_message or "")[:1000]
        if state.newest_attempt_at is not None and attempted_at < state.newest_attempt_at:
            attempts.append((organization_id, batch_id, o.record_id, at, outcome, error and error.code, message,
                             0, late, o.triggered_by_id))
            continue
        state.newest_attempt_at = attempted_at
        kept = state.status == EXCLUDED
        if error is None:
            state.consecutive_failures = 0
            state.auto_attempts = 0
            row = {"retry_requested_by_id": None, "status": EXCLUDED if kept else SYNCED, "consecutive_failures": 0,
                   "auto_attempts": 0, "next_attempt_at": None, "synced_at": at, "external_id": o.external_id,
                   "last_attempt_at": at, "last_error_code": None, "last_error_message": None}
            last_success = attempted_at  # the newest so far: outcomes are in time order
        else:
            state.consecutive_failures += 1
            state.auto_attempts += 1
            row = {"retry_requested_by_id": None, "status": EXCLUDED if kept else FAILED,
                   "consecutive_failures": state.consecutive_failures, "auto_attempts": state.auto_attempts,
                   "next_attempt_at": next_attempt_at(attempted_at, error.transient, state.auto_attempts,
                                                      max_auto_attempts, o.retry_after, retry_delay_scale),
                   "last_attempt_at": at, "last_error_code": error.code, "last_error_message": message}
        update = updates.get(o.record_id)
        if update is None:
            updates[o.record_id] = row
        else:  # a later attempt of the record in this batch: its values win; an earlier success's sync details stay
            update.update(row)
        attempts.append((organization_id, batch_id, o.record_id, at, outcome, error and error.code, message,
                         state.consecutive_failures, not_late, o.triggered_by_id))

    if attempts:
        executemany(insert_sql(SyncAttempt.__table__, ATTEMPT_COLUMNS), attempts)
        if updates:
            _update_records(updates, states)
        _add_hourly_counts(organization_id, hours)
    connector.last_batch_at = finished_at
    if last_success is not None and (connector.last_success_at is None or last_success > connector.last_success_at):
        connector.last_success_at = last_success
    return batch


STATE_COLUMNS = ("id", "status", "consecutive_failures", "auto_attempts", "last_attempt_at", *WRITTEN_WHEN_CHANGED)


def _load_states(record_ids: set[int]) -> dict[int, _RecordState]:
    rows = select_records(STATE_COLUMNS, list(record_ids))
    return {r[0]: _RecordState(r[1], r[2], r[3], r[4], r[5:]) for r in rows}


def _update_records(updates: dict[int, dict[str, Any]], states: dict[int, _RecordState]) -> None:
    """Set each record's new state, one executemany per set of columns written.

    Columns of WRITTEN_WHEN_CHANGED whose value does not change are left out.
    """
    table = SyncRecord.__table__
    stamp = bind_processor(table.c.next_attempt_at)
    by_shape: dict[tuple[str, ...], list[tuple]] = {}
    for record_id, update in updates.items():
        for column, stored in zip(WRITTEN_WHEN_CHANGED, states[record_id].stored):
            if update[column] == stored:
                del update[column]
        if update.get("next_attempt_at") is not None:
            update["next_attempt_at"] = stamp(update["next_attempt_at"])
        by_shape.setdefault(tuple(update), []).append((*update.values(), record_id))
    for columns, rows in by_shape.items():
        executemany(update_sql(table, columns), rows)
    for key, obj in list(db.session.identity_map.items()):  # the key holds the id: an expired object is not loaded
        if key[0] is SyncRecord and key[1][0] in updates:
            db.session.expire(obj)


def _add_hourly_counts(organization_id: int, hours: dict[datetime, list[int]]) -> None:
    """Add each hour's (successes, failures) to the organization's hourly counters."""
    db.session.execute(hourly_upsert(), [
        {"organization_id": organization_id, "hour": hour, "successes": successes, "failures": failures}
        for hour, (successes, failures) in hours.items()
    ])
