"""Ingestion: a validated payload (`dashboard.sync.payload`) becomes one batch of the sync log."""
from __future__ import annotations

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Connector, SyncBatch, SyncRecord
from dashboard.sync.log import Outcome, record_batch
from dashboard.sync.payload import UNKNOWN_CONNECTOR, AttemptReport, FieldError, SyncBatchRequest, unprocessable


def ingest(
    organization_id: int,
    payload: SyncBatchRequest,
    *,
    max_auto_attempts: int,
    idempotency_key: str | None = None,
) -> SyncBatch:
    """Write the payload as one batch of the sync log; the caller commits, then enqueues the evaluation."""
    connector = db.session.scalar(
        sa.select(Connector).where(Connector.id == payload.connector, Connector.organization_id == organization_id)
    )
    if connector is None:
        raise unprocessable([FieldError("connector", UNKNOWN_CONNECTOR)])
    record_ids = _upsert_records(connector, payload.attempts)
    ordered = sorted(payload.attempts, key=lambda a: a.attempted_at)
    return record_batch(
        connector,
        [_outcome(record_ids[a.record_ref], a) for a in ordered],
        source="api",
        started_at=ordered[0].attempted_at,
        finished_at=ordered[-1].attempted_at,
        max_auto_attempts=max_auto_attempts,
        idempotency_key=idempotency_key,
    )


def find_batch(organization_id: int, idempotency_key: str) -> SyncBatch | None:
    return db.session.scalar(
        sa.select(SyncBatch).where(SyncBatch.organization_id == organization_id,
                                   SyncBatch.idempotency_key == idempotency_key)
    )


def _upsert_records(connector: Connector, attempts: list[AttemptReport]) -> dict[str, int]:
    """The record id of each reference; unknown references become new pending records."""
    details = {a.record_ref: a for a in attempts}
    records = {
        r.source_ref: r
        for r in db.session.scalars(
            sa.select(SyncRecord).where(SyncRecord.connector_id == connector.id, SyncRecord.source_ref.in_(details))
        )
    }
    for ref, attempt in details.items():
        record = records.get(ref)
        if record is None:
            record = SyncRecord(organization_id=connector.organization_id, connector_id=connector.id,
                                source_ref=ref, status="pending", consecutive_failures=0, auto_attempts=0)
            db.session.add(record)
            records[ref] = record
        record.record_type = attempt.record_type
        record.amount_minor = attempt.amount_minor
        record.currency = attempt.currency
        record.approved_at = attempt.approved_at
    db.session.flush()
    return {ref: record.id for ref, record in records.items()}


def _outcome(record_id: int, attempt: AttemptReport) -> Outcome:
    return Outcome(
        record_id=record_id,
        attempted_at=attempt.attempted_at,
        ok=attempt.outcome == "success",
        external_id=attempt.external_id,
        error_code=attempt.error_code,
        error_message=attempt.error_message,
    )
