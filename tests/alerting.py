"""Helpers for alert tests: write attempts through the real sync log writer, then evaluate."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from dashboard.alerts.engine import evaluate_batch
from dashboard.extensions import db
from dashboard.models import Alert, Notification, SyncRecord, utcnow
from dashboard.sync.log import Outcome, record_batch

T0 = datetime(2026, 11, 20, 12, 0, 0)


def log_batch(connector, attempts, at: datetime | None = None) -> int:  # type: ignore[no-untyped-def]
    """Write one batch of (record, error_code or None) attempts, one second apart, and commit it."""
    at = at or utcnow()
    outcomes = []
    for i, (record, error_code) in enumerate(attempts):
        when = at + timedelta(seconds=i)
        outcomes.append(Outcome(record_id=record.id, attempted_at=when, ok=error_code is None,
                                external_id="X" if error_code is None else None, error_code=error_code,
                                error_message=None if error_code is None else f"{error_code} from the ledger"))
    batch = record_batch(connector, outcomes, source="orchestrator", started_at=at, finished_at=at,
                         max_auto_attempts=5)
    db.session.commit()
    return batch.id


def run(connector, attempts, at: datetime | None = None, now: datetime | None = None) -> int:  # type: ignore[no-untyped-def]
    """Log a batch and evaluate it; returns the batch id."""
    at = at or utcnow()
    batch_id = log_batch(connector, attempts, at)
    evaluate_batch(batch_id, now or at + timedelta(seconds=len(attempts)))
    return batch_id


def alerts(**where) -> list[Alert]:  # type: ignore[no-untyped-def]
    query = sa.select(Alert).order_by(Alert.id)
    for key, value in where.items():
        query = query.where(getattr(Alert, key) == value)
    return list(db.session.scalars(query))


def notifications(user=None, event: str | None = None) -> list[Notification]:  # type: ignore[no-untyped-def]
    query = sa.select(Notification).order_by(Notification.id)
    if user is not None:
        query = query.where(Notification.user_id == user.id)
    if event is not None:
        query = query.where(Notification.event == event)
    return list(db.session.scalars(query))


def affected_ids(alert: Alert) -> set[int]:
    from dashboard.models import AlertRecord

    return set(db.session.scalars(sa.select(AlertRecord.record_id).where(AlertRecord.alert_id == alert.id)))


def set_status(record: SyncRecord, status: str) -> None:
    db.session.execute(sa.update(SyncRecord).where(SyncRecord.id == record.id).values(status=status))
    db.session.commit()
