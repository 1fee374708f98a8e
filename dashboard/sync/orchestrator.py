"""The accounting sync orchestrator: push one connector's due records and log the batch.

Pushing happens outside any database transaction (the accounting system may
be slow); the attempts, the records' new state and the batch are then written
in one transaction, and only after the commit is the batch handed to the alert
evaluation.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from flask import current_app

from dashboard.database import write_transaction
from dashboard.extensions import db, redis_ext
from dashboard.models import Connector, Organization, SyncBatch, SyncRecord, utcnow
from dashboard.queues import evaluate_after_commit
from dashboard.sync.connectors import Adapter, OutgoingRecord
from dashboard.sync.connectors.registry import adapter_for, provider, pushed_providers
from dashboard.sync.errors import describe
from dashboard.sync.log import Outcome, record_batch
from dashboard.vocabulary import RecordStatus

log = logging.getLogger(__name__)


def connectors_to_sync() -> list[int]:
    """Enabled connectors whose records this service pushes (not external orchestrators), neither removed nor of an
    archived organization."""
    return list(db.session.scalars(
        sa.select(Connector.id).join(Organization, Organization.id == Connector.organization_id)
        .where(Connector.enabled.is_(True), Connector.provider.in_(pushed_providers()),
               Connector.removed_at.is_(None), Organization.archived_at.is_(None))
        .order_by(Connector.id)
    ))


def due_records(connector_id: int, now, limit: int) -> list[SyncRecord]:  # type: ignore[no-untyped-def]
    """Pending records and failed ones due for an automatic retry, oldest approval first."""
    pending = (sa.select(SyncRecord).where(SyncRecord.connector_id == connector_id, SyncRecord.status == RecordStatus.PENDING)
               .order_by(SyncRecord.approved_at, SyncRecord.id).limit(limit))
    retry = (sa.select(SyncRecord).where(SyncRecord.connector_id == connector_id, SyncRecord.status == RecordStatus.FAILED,
                                         SyncRecord.next_attempt_at <= now)
             .order_by(SyncRecord.approved_at, SyncRecord.id).limit(limit))
    records = list(db.session.scalars(pending)) + list(db.session.scalars(retry))
    records.sort(key=lambda r: (r.approved_at, r.id))
    return records[:limit]


@contextmanager
def connector_lock(connector_id: int, timeout: int = 900) -> Iterator[bool]:
    """Hold the connector's sync lock, so two sync jobs never run at once for one connector."""
    lock = redis_ext.client.lock(f"sync-lock:connector:{connector_id}", timeout=timeout, blocking=False)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


def sync_connector(connector_id: int) -> SyncBatch | None:
    """Push one batch of a connector's due records; returns the committed batch, if any."""
    with connector_lock(connector_id) as acquired:
        if not acquired:
            log.info("connector %s is being synced already", connector_id)
            return None
        return _sync(connector_id)


def _sync(connector_id: int) -> SyncBatch | None:
    connector = db.session.get(Connector, connector_id)
    if connector is None or not connector.enabled or not provider(connector.provider).pushed:
        return None
    if connector.removed_at is not None or connector.organization.archived_at is not None:
        return None  # a sync queued before the connector was removed or its organization archived
    started_at = utcnow()
    records = due_records(connector_id, started_at, current_app.config["SYNC_BATCH_SIZE"])
    if not records:
        db.session.rollback()
        return None
    adapter = connector_adapter(connector)
    outgoing = [(r.id, r.retry_requested_by_id, _outgoing(r)) for r in records]
    db.session.rollback()  # hold no transaction while the accounting system answers

    outcomes, stopped_reason = push_all(adapter, outgoing)
    connector = db.session.get(Connector, connector_id)
    batch = record_batch(
        connector, outcomes, source="orchestrator", started_at=started_at, finished_at=utcnow(),
        max_auto_attempts=current_app.config["SYNC_MAX_AUTO_ATTEMPTS"],
        retry_delay_scale=current_app.config["RETRY_DELAY_SCALE"], stopped_reason=stopped_reason,
    )
    evaluate_after_commit(batch.id)  # the evaluation must see this batch's attempts
    db.session.commit()
    return batch


def connector_adapter(connector: Connector) -> Adapter:
    """The connector's adapter, able to store a new secret (refreshed OAuth2 tokens) in its own short transaction
    and to read the stored one again: pushing holds no transaction, and another worker may have rotated it."""
    connector_id = connector.id

    def store_secret(secret: str) -> None:
        with write_transaction():  # committed before the adapter uses the new tokens
            db.session.execute(sa.update(Connector).where(Connector.id == connector_id).values(secret=secret))

    def load_secret() -> str | None:
        db.session.rollback()  # a fresh snapshot: another worker may just have committed new tokens
        try:
            return db.session.scalar(sa.select(Connector.secret).where(Connector.id == connector_id))
        finally:
            db.session.rollback()  # hold no transaction while the accounting system answers

    return adapter_for(connector.provider, dict(connector.settings or {}), connector.secret,
                       store_secret=store_secret, load_secret=load_secret)


def push_all(adapter, outgoing) -> tuple[list[Outcome], str | None]:  # type: ignore[no-untyped-def]
    """Push records in order, stopping at the first error that affects every record; records the adapter's
    pre-flight holds back (a closed period) fail without a push."""
    outcomes: list[Outcome] = []
    held = adapter.hold_back([record for _id, _by, record in outgoing]) if hasattr(adapter, "hold_back") else {}
    for record_id, requested_by, record in outgoing:
        result = held.get(record.source_ref) or adapter.push(record)
        outcomes.append(Outcome(
            record_id=record_id, attempted_at=utcnow(), ok=result.ok, external_id=result.external_id,
            error_code=result.error_code, error_message=result.message, retry_after=result.retry_after,
            triggered_by_id=requested_by,
        ))
        if not result.ok and describe(result.error_code).stops_batch:
            return outcomes, describe(result.error_code).code
    return outcomes, None


def _outgoing(record: SyncRecord) -> OutgoingRecord:
    return OutgoingRecord(
        source_ref=record.source_ref, record_type=record.record_type, amount_minor=record.amount_minor,
        currency=record.currency, approved_at=record.approved_at, volunteer=record.volunteer,
        volunteer_ref=record.volunteer_ref,
        description=record.description, attempt_number=record.consecutive_failures + 1,
    )
