"""The one place that writes the sync log.

A batch's attempts, the records' new state, the hourly counters and the batch
row are written together by :func:`record_batch`; the caller commits them in
one transaction. Each attempt stores the record's failure streak as of that
attempt, so the alert rules read crossings from the log.

The log is read in attempt-time order. An attempt older than its record's
newest when it arrives is *late*: it is logged (and shown in the record's
history) but changes neither the record's state nor any streak, so it can
neither raise nor resolve an alert.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from dashboard.database import execute_in_chunks
from dashboard.extensions import db
from dashboard.models import Connector, HourlyAttemptCount, SyncAttempt, SyncBatch, SyncRecord
from dashboard.sync.errors import describe
from dashboard.sync.retry import next_attempt_at
from dashboard.vocabulary import AttemptOutcome, RecordStatus


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


@dataclass
class _RecordState:
    status: str
    consecutive_failures: int
    auto_attempts: int
    newest_attempt_at: datetime | None


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
    attempts: list[dict] = []
    updates: dict[int, dict] = {}
    hours: dict[datetime, list[int]] = {}
    last_success: datetime | None = None
    for o in outcomes:
        state = states[o.record_id]
        counter = hours.setdefault(o.attempted_at.replace(minute=0, second=0, microsecond=0), [0, 0])
        counter[0 if o.ok else 1] += 1
        if state.newest_attempt_at is not None and o.attempted_at < state.newest_attempt_at:
            attempts.append(_attempt_row(connector, batch, o, failure_streak=0, late=True))
            continue
        state.newest_attempt_at = o.attempted_at
        update = updates.setdefault(o.record_id, {"id": o.record_id, "retry_requested_by_id": None})
        if o.ok:
            state.consecutive_failures = 0
            state.auto_attempts = 0
            update.update(status=RecordStatus.SYNCED if state.status != RecordStatus.EXCLUDED else RecordStatus.EXCLUDED,
                          consecutive_failures=0, auto_attempts=0, next_attempt_at=None,
                          synced_at=o.attempted_at, external_id=o.external_id, last_attempt_at=o.attempted_at,
                          last_error_code=None, last_error_message=None)
            last_success = max(last_success or o.attempted_at, o.attempted_at)
        else:
            state.consecutive_failures += 1
            state.auto_attempts += 1
            error = describe(o.error_code)
            update.update(status=RecordStatus.FAILED if state.status != RecordStatus.EXCLUDED else RecordStatus.EXCLUDED,
                          consecutive_failures=state.consecutive_failures, auto_attempts=state.auto_attempts,
                          next_attempt_at=next_attempt_at(o.attempted_at, error.transient, state.auto_attempts,
                                                          max_auto_attempts, o.retry_after, retry_delay_scale),
                          last_attempt_at=o.attempted_at, last_error_code=error.code,
                          last_error_message=o.error_message)
        attempts.append(_attempt_row(connector, batch, o, failure_streak=state.consecutive_failures, late=False))

    if attempts:
        # Core insert, executemany in chunks (the ORM bulk path splits rows by which keys are None).
        execute_in_chunks(SyncAttempt.__table__.insert(), attempts)
        if updates:
            _bulk_update_records(list(updates.values()))
        _add_hourly_counts(connector.organization_id, hours)
    connector.last_batch_at = finished_at
    if last_success is not None and (connector.last_success_at is None or last_success > connector.last_success_at):
        connector.last_success_at = last_success
    return batch


def _attempt_row(connector: Connector, batch: SyncBatch, o: Outcome, *, failure_streak: int, late: bool) -> dict:
    return {
        "organization_id": connector.organization_id, "batch_id": batch.id, "record_id": o.record_id,
        "attempted_at": o.attempted_at, "outcome": AttemptOutcome.SUCCESS if o.ok else AttemptOutcome.FAILURE,
        "error_code": None if o.ok else describe(o.error_code).code,
        "error_message": None if o.ok else (o.error_message or "")[:1000],
        "failure_streak": failure_streak, "late": late, "triggered_by_id": o.triggered_by_id,
    }


def _load_states(record_ids: set[int]) -> dict[int, _RecordState]:
    rows = db.session.execute(
        sa.select(SyncRecord.id, SyncRecord.status, SyncRecord.consecutive_failures, SyncRecord.auto_attempts,
                  SyncRecord.last_attempt_at)
        .where(SyncRecord.id.in_(record_ids)).order_by(SyncRecord.id)
        .with_for_update()  # PostgreSQL: two batches of one record take turns (in id order: no deadlock)
    ).all()
    return {r.id: _RecordState(r.status, r.consecutive_failures, r.auto_attempts, r.last_attempt_at) for r in rows}


def _bulk_update_records(updates: list[dict]) -> None:
    """One executemany per shape of update (success rows and failure rows set different columns)."""
    by_shape: dict[tuple[str, ...], list[dict]] = {}
    for row in updates:
        by_shape.setdefault(tuple(sorted(row)), []).append(row)
    table = SyncRecord.__table__
    for shape, rows in by_shape.items():
        columns = [c for c in shape if c != "id"]
        statement = (
            table.update()
            .where(table.c.id == sa.bindparam("_id"))
            .values({c: sa.bindparam(c) for c in columns})
        )
        execute_in_chunks(statement, [{**{c: r[c] for c in columns}, "_id": r["id"]} for r in rows])
    updated = {r["id"] for r in updates}
    for key, obj in list(db.session.identity_map.items()):  # the key holds the id: an expired object is not loaded
        if key[0] is SyncRecord and key[1][0] in updated:
            db.session.expire(obj)


def _add_hourly_counts(organization_id: int, hours: dict[datetime, list[int]]) -> None:
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = HourlyAttemptCount.__table__
    for hour, (successes, failures) in hours.items():
        statement = insert(table).values(organization_id=organization_id, hour=hour,
                                         successes=successes, failures=failures)
        statement = statement.on_conflict_do_update(
            index_elements=["organization_id", "hour"],
            set_={"successes": table.c.successes + successes, "failures": table.c.failures + failures},
        )
        db.session.execute(statement)
