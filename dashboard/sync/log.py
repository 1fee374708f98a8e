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

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any, Callable, Iterable

from sqlalchemy.orm.attributes import set_committed_value

from dashboard.extensions import db
from dashboard.models import Connector, HourlyAttemptCount, SyncAttempt, SyncBatch, SyncRecord
from dashboard.sync.errors import describe
from dashboard.sync.log_statements import (
    bind_processor, executemany, hourly_upsert, insert_sql, result_processor, select_records,
    update_sql,
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
    """A record's state: as stored before this batch, then as each of its attempts that is not late moves it."""

    status: str
    consecutive_failures: int
    auto_attempts: int
    newest_attempt_at: datetime | None
    stored: tuple
    """The columns of WRITTEN_WHEN_CHANGED as stored before this batch."""
    moved: bool = False
    next_attempt_at: datetime | None = None
    last_attempt_at: Any = None
    """In the driver's form, as the attempt row has it."""
    last_error_code: str | None = None
    last_error_message: str | None = None
    synced: tuple | None = None
    """(synced_at, external_id) of the batch's newest success of the record, if any."""


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
    outcomes = sorted(outcomes, key=attrgetter("attempted_at"))
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
    append = attempts.append
    hours: dict[datetime, list[int]] = {}
    hour_end = counter = None
    last_success: datetime | None = None
    for o in outcomes:
        record_id = o.record_id
        state = states[record_id]
        attempted_at = o.attempted_at
        if hour_end is None or attempted_at >= hour_end:  # in time order: a new hour starts here
            hour = attempted_at.replace(minute=0, second=0, microsecond=0)
            hour_end = hour + HOUR
            counter = hours.setdefault(hour, [0, 0])
        at = stamp(attempted_at)
        if o.ok:
            counter[0] += 1
            if state.newest_attempt_at is not None and attempted_at < state.newest_attempt_at:
                append((organization_id, batch_id, record_id, at, SUCCESS, None, None, 0, late, o.triggered_by_id))
                continue
            state.status = EXCLUDED if state.status == EXCLUDED else SYNCED
            state.consecutive_failures = state.auto_attempts = 0
            state.next_attempt_at = state.last_error_code = state.last_error_message = None
            state.synced = (at, o.external_id)
            last_success = attempted_at  # the newest so far: outcomes are in time order
            append((organization_id, batch_id, record_id, at, SUCCESS, None, None, 0, not_late, o.triggered_by_id))
        else:
            counter[1] += 1
            error = describe(o.error_code)
            message = (o.error_message or "")[:1000]
            if state.newest_attempt_at is not None and attempted_at < state.newest_attempt_at:
                append((organization_id, batch_id, record_id, at, FAILURE, error.code, message, 0, late,
                        o.triggered_by_id))
                continue
            state.status = EXCLUDED if state.status == EXCLUDED else FAILED
            streak = state.consecutive_failures = state.consecutive_failures + 1
            state.auto_attempts += 1
            state.next_attempt_at = next_attempt_at(attempted_at, error.transient, state.auto_attempts,
                                                    max_auto_attempts, o.retry_after, retry_delay_scale)
            state.last_error_code = error.code
            state.last_error_message = message
            append((organization_id, batch_id, record_id, at, FAILURE, error.code, message, streak, not_late,
                    o.triggered_by_id))
        state.newest_attempt_at = attempted_at
        state.last_attempt_at = at
        state.moved = True

    if attempts:
        executemany(insert_sql(SyncAttempt.__table__, ATTEMPT_COLUMNS), attempts)
        _update_records(states)
        _add_hourly_counts(organization_id, hours)
    _update_connector(connector, finished_at, last_success)
    return batch


def _update_connector(connector: Connector, finished_at: datetime, last_success: datetime | None) -> None:
    """Note the connector's newest batch and success, written at once, as the session's loaded values."""
    values = {"last_batch_at": finished_at}
    if last_success is not None and (connector.last_success_at is None or last_success > connector.last_success_at):
        values["last_success_at"] = last_success
    table = Connector.__table__
    executemany(update_sql(table, tuple(values)),
                [(*(bind_processor(table.c[name])(value) for name, value in values.items()), connector.id)])
    for name, value in values.items():
        set_committed_value(connector, name, value)


STATE_COLUMNS = ("id", "consecutive_failures", "auto_attempts", "last_attempt_at", *WRITTEN_WHEN_CHANGED)


def _load_states(record_ids: set[int]) -> dict[int, _RecordState]:
    """The records' states, in id order. WRITTEN_WHEN_CHANGED stay in the driver's form, the form their new values
    are compared in (a stored text of another form than this database's for the same time reads as changed, and
    is written again)."""
    rows = select_records(STATE_COLUMNS, list(record_ids))
    attempted_at = result_processor(SyncRecord.__table__.c.last_attempt_at)
    return {r[0]: _RecordState(r[4], r[1], r[2], attempted_at(r[3]), r[4:]) for r in rows}


UPDATE_COLUMNS = (*WRITTEN_WHEN_CHANGED, "synced_at", "external_id", "consecutive_failures", "auto_attempts",
                  "last_attempt_at", "last_error_message")
"""A moved record's columns, as `_update_records` lists their values (then the record's id). The first four,
WRITTEN_WHEN_CHANGED, are written only when changed, the sync details only after a success, the rest always."""
NOT_SYNCED = (None, None)


@functools.cache
def _update_shape(written: tuple[bool, ...]) -> tuple[tuple[str, ...], Callable[[tuple], tuple]]:
    """The columns an UPDATE writes (whether it writes each of WRITTEN_WHEN_CHANGED, then the sync details), and
    what picks their values, then the id, from a row of UPDATE_COLUMNS and the id."""
    indexes = [i for i, write in enumerate((*written, written[-1], True, True, True, True)) if write]
    return tuple(UPDATE_COLUMNS[i] for i in indexes), itemgetter(*indexes, len(UPDATE_COLUMNS))


def _update_records(states: dict[int, _RecordState]) -> None:
    """Set each moved record's new state, one executemany per set of columns written, in id order."""
    table = SyncRecord.__table__
    stamp = bind_processor(table.c.next_attempt_at)
    by_shape: dict[tuple[str, ...], list[tuple]] = {}
    moved: set[int] = set()
    for record_id, s in states.items():
        if not s.moved:
            continue
        moved.add(record_id)
        status, error_code, stored_next_at, retry_by = s.stored
        next_at = None if s.next_attempt_at is None else stamp(s.next_attempt_at)
        synced = s.synced or NOT_SYNCED
        columns, pick = _update_shape((s.status != status, s.last_error_code != error_code, next_at != stored_next_at,
                                       retry_by is not None, synced is not NOT_SYNCED))
        row = (s.status, s.last_error_code, next_at, None, *synced, s.consecutive_failures, s.auto_attempts,
               s.last_attempt_at, s.last_error_message, record_id)
        rows = by_shape.get(columns)
        if rows is None:
            rows = by_shape[columns] = []
        rows.append(pick(row))
    for columns, rows in by_shape.items():
        executemany(update_sql(table, columns), rows)
    _expire_loaded(moved)


def _expire_loaded(record_ids: set[int]) -> None:
    """Expire the session's objects of these records: their rows changed behind the ORM's back."""
    for key, obj in list(db.session.identity_map.items()):  # the key holds the id: an expired object is not loaded
        if key[0] is SyncRecord and key[1][0] in record_ids:
            db.session.expire(obj)


def _add_hourly_counts(organization_id: int, hours: dict[datetime, list[int]]) -> None:
    """Add each hour's (successes, failures) to the organization's hourly counters."""
    stamp = bind_processor(HourlyAttemptCount.__table__.c.hour)
    executemany(hourly_upsert(), [(organization_id, stamp(hour), successes, failures)
                                  for hour, (successes, failures) in hours.items()])
