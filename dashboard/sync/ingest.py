"""Ingestion: a validated payload (`dashboard.sync.payload`) becomes one batch of the sync log.

Attempts are facts: one already in the log (same record, same time, same
outcome) is skipped and reported as skipped, so a client that re-sends a batch
after a dropped connection, with or without an Idempotency-Key, writes nothing
twice. The same record and time with another outcome is a contradiction and is
refused. Records are immutable once known: a report that gives a known record
another type, amount, currency or approval time is refused, not applied.

The volunteer reference is a detail too, but one a report may omit: a record
takes it from the first report that gives it (a known record without one gets
it then), and a report that gives a known record another one is refused (409)
like any other changed detail. A report without it changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dashboard.database import execute_in_chunks
from dashboard.extensions import db
from dashboard.models import Connector, SyncAttempt, SyncBatch, SyncRecord
from dashboard.queues import evaluate_after_commit
from dashboard.sync.errors import describe
from dashboard.sync.log import Outcome, record_batch
from dashboard.sync.payload import (
    UNKNOWN_CONNECTOR, AttemptReport, FieldError, PayloadRejected, SyncBatchRequest, unprocessable,
)
from dashboard.vocabulary import AttemptOutcome, RecordStatus

RECORD_DETAILS = ("record_type", "amount_minor", "currency", "approved_at")


@dataclass(frozen=True)
class Ingested:
    """What one request wrote: the batch (none when every attempt was in the log already)."""

    batch_id: int | None
    written: int
    failures: int
    skipped: int

    def body(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "attempts": self.written, "failures": self.failures,
                "skipped": self.skipped}


def ingest(
    organization_id: int,
    payload: SyncBatchRequest,
    *,
    max_auto_attempts: int,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> Ingested:
    """Write the payload's new attempts as one batch, and queue its evaluation for after the commit.

    Runs in the caller's write transaction, which the caller commits. Raises PayloadRejected
    (409) when the payload contradicts the log, having written nothing.
    """
    connector = db.session.scalar(
        sa.select(Connector).where(Connector.id == payload.connector, Connector.organization_id == organization_id,
                                   Connector.removed_at.is_(None))
    )
    if connector is None:
        raise unprocessable([FieldError("connector", UNKNOWN_CONNECTOR)])
    record_ids = _known_or_new_records(connector, payload.attempts)
    new = _new_attempts(record_ids, payload.attempts)
    if not new:
        return Ingested(None, 0, 0, len(payload.attempts))
    batch = record_batch(
        connector,
        [_outcome(record_ids[a.record_ref], a) for a in new],
        source="api",
        started_at=min(a.attempted_at for a in new),
        finished_at=max(a.attempted_at for a in new),
        max_auto_attempts=max_auto_attempts,
        idempotency_key=idempotency_key,
    )
    result = Ingested(batch.id, batch.attempt_count, batch.failure_count, len(payload.attempts) - len(new))
    batch.request_hash = request_hash
    batch.response_body = result.body()
    evaluate_after_commit(batch.id)
    return result


def find_batch(organization_id: int, idempotency_key: str) -> SyncBatch | None:
    return db.session.scalar(
        sa.select(SyncBatch).where(SyncBatch.organization_id == organization_id,
                                   SyncBatch.idempotency_key == idempotency_key)
    )


def _known_or_new_records(connector: Connector, attempts: list[AttemptReport]) -> dict[str, int]:
    """The record id of each reference; unknown references become new pending records.

    A known record whose details differ from the report's is a conflict (409), naming both values; a known
    record without a volunteer reference takes the reported one.
    """
    first_index: dict[str, int] = {}
    volunteers: dict[str, tuple[int, str]] = {}  # (first index, value); the payload refused disagreeing ones
    for index, attempt in enumerate(attempts):
        first_index.setdefault(attempt.record_ref, index)
        if attempt.volunteer_ref is not None:
            volunteers.setdefault(attempt.record_ref, (index, attempt.volunteer_ref))
    known = {
        r.source_ref: r
        for r in db.session.scalars(
            sa.select(SyncRecord).where(SyncRecord.connector_id == connector.id,
                                        SyncRecord.source_ref.in_(first_index))
        )
    }
    conflicts = [
        FieldError(f"attempts[{index}].{name}",
                   f"Record {ref!r} is known with {name} {_shown(getattr(known[ref], name))}, not "
                   f"{_shown(getattr(attempts[index], name))}; records cannot be changed once known")
        for ref, index in first_index.items() if ref in known
        for name in RECORD_DETAILS if getattr(known[ref], name) != getattr(attempts[index], name)
    ] + _volunteer_conflicts({ref: record.volunteer_ref for ref, record in known.items()}, volunteers)
    if conflicts:
        raise _contradicts_records(conflicts)
    new_rows = [
        {"organization_id": connector.organization_id, "connector_id": connector.id, "source_ref": ref,
         "status": RecordStatus.PENDING, "consecutive_failures": 0, "auto_attempts": 0, "volunteer": "",
         "volunteer_ref": volunteers[ref][1] if ref in volunteers else None, "description": "",
         **{name: getattr(attempts[index], name) for name in RECORD_DETAILS}}
        for ref, index in first_index.items() if ref not in known
    ]
    _name_volunteers({ref: known[ref] for ref in volunteers if ref in known and known[ref].volunteer_ref is None},
                     volunteers)
    ids = {ref: record.id for ref, record in known.items()}
    if new_rows:
        # Core executemany: the ORM's unit of work costs more than the insert itself for hundreds of rows.
        execute_in_chunks(sa.insert(SyncRecord.__table__), new_rows)
        ids.update(db.session.execute(
            sa.select(SyncRecord.source_ref, SyncRecord.id).where(
                SyncRecord.connector_id == connector.id, SyncRecord.source_ref.in_([r["source_ref"] for r in new_rows]))
        ).tuples().all())
    return ids


def _volunteer_conflicts(known: dict[str, str | None], reported: dict[str, tuple[int, str]]) -> list[FieldError]:
    """Reported volunteer references that differ from the one a known record already has."""
    return [
        FieldError(f"attempts[{index}].volunteer_ref",
                   f"Record {ref!r} is known with volunteer_ref {known[ref]!r}, not {value!r}; "
                   "records cannot be changed once known")
        for ref, (index, value) in reported.items() if known.get(ref) not in (None, value)
    ]


def _name_volunteers(records: dict[str, SyncRecord], reported: dict[str, tuple[int, str]]) -> None:
    """Give known records without a volunteer reference the reported one.

    Only where the record still has none when written: should a concurrent request have given it another
    meanwhile, the record keeps that one and this request is refused (409), as if it had come second.
    """
    if not records:
        return
    table = SyncRecord.__table__
    execute_in_chunks(
        table.update().where(table.c.id == sa.bindparam("_id"), table.c.volunteer_ref.is_(None))
        .values(volunteer_ref=sa.bindparam("_ref")),
        [{"_id": record.id, "_ref": reported[ref][1]} for ref, record in records.items()])
    stored = dict(db.session.execute(
        sa.select(SyncRecord.source_ref, SyncRecord.volunteer_ref)
        .where(SyncRecord.id.in_([record.id for record in records.values()]))).tuples().all())
    conflicts = _volunteer_conflicts(stored, {ref: reported[ref] for ref in records})
    if conflicts:
        raise _contradicts_records(conflicts)
    for record in records.values():
        db.session.expire(record, ["volunteer_ref"])


def _contradicts_records(conflicts: list[FieldError]) -> PayloadRejected:
    return PayloadRejected(409, "The report contradicts records already known; nothing was written", conflicts)


def _new_attempts(record_ids: dict[str, int], attempts: list[AttemptReport]) -> list[AttemptReport]:
    """The attempts not yet in the log; an attempt logged with another outcome is a conflict (409)."""
    logged = {
        (row.record_id, row.attempted_at): row
        for row in db.session.execute(
            sa.select(SyncAttempt.record_id, SyncAttempt.attempted_at, SyncAttempt.outcome, SyncAttempt.error_code)
            .where(SyncAttempt.record_id.in_(set(record_ids.values())),
                   SyncAttempt.attempted_at.between(min(a.attempted_at for a in attempts),
                                                    max(a.attempted_at for a in attempts)))
        )
    }
    new, conflicts = [], []
    for index, attempt in enumerate(attempts):
        row = logged.get((record_ids[attempt.record_ref], attempt.attempted_at))
        if row is None:
            new.append(attempt)
        elif (row.outcome, row.error_code) != (attempt.outcome, _logged_code(attempt)):
            conflicts.append(FieldError(
                f"attempts[{index}].outcome",
                f"This attempt is logged as {_shown_outcome(row.outcome, row.error_code)}, not "
                f"{_shown_outcome(attempt.outcome, attempt.error_code)}"))
    if conflicts:
        raise PayloadRejected(409, "The report contradicts attempts already logged; nothing was written", conflicts)
    return new


def _logged_code(attempt: AttemptReport) -> str | None:
    return describe(attempt.error_code).code if attempt.outcome == AttemptOutcome.FAILURE else None


def _shown(value: object) -> str:
    return value.isoformat() + "Z" if isinstance(value, datetime) else repr(value)


def _shown_outcome(outcome: str, error_code: str | None) -> str:
    return f"{outcome} ({error_code})" if error_code else outcome


def _outcome(record_id: int, attempt: AttemptReport) -> Outcome:
    return Outcome(
        record_id=record_id,
        attempted_at=attempt.attempted_at,
        ok=attempt.outcome == AttemptOutcome.SUCCESS,
        external_id=attempt.external_id,
        error_code=attempt.error_code,
        error_message=attempt.error_message,
    )
