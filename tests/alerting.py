"""Helpers for alert tests: write attempts through the real sync log writer, then evaluate."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Iterator

import sqlalchemy as sa

from dashboard.alerts.engine import evaluate_batch
from dashboard.database import writer
from dashboard.extensions import db
from dashboard.models import Alert, Notification, SyncRecord, utcnow
from dashboard.sync.log import Outcome, record_batch

T0 = datetime(2026, 11, 20, 12, 0, 0)


@contextmanager
def writing() -> Iterator[None]:
    """Write as the product does: end the current read snapshot, then BEGIN IMMEDIATE.

    Needed when a real worker writes to the same SQLite file at the same time: a deferred
    transaction that read before the worker committed cannot upgrade to a writer.
    """
    db.session.commit()
    with writer():
        yield
        db.session.commit()  # leave no transaction (and so no write lock) open behind


def log_batch(connector, attempts, at: datetime | None = None) -> int:  # type: ignore[no-untyped-def]
    """Write one batch of (record, error_code or None) attempts, one second apart, and commit it."""
    with writing():
        return _log_batch(connector, attempts, at)


def _log_batch(connector, attempts, at: datetime | None) -> int:  # type: ignore[no-untyped-def]
    at = at or utcnow()
    outcomes = []
    for i, (record, error_code) in enumerate(attempts):
        when = at + timedelta(seconds=i)
        outcomes.append(Outcome(record_id=record.id, attempted_at=when, ok=error_code is None,
                                external_id="X" if error_code is None else None, error_code=error_code,
                                error_message=None if error_code is None else f"{error_code} from the ledger"))
    batch = record_batch(connector, outcomes, source="orchestrator", started_at=at, finished_at=at,
                         max_auto_attempts=5)
    batch_id = batch.id
    db.session.commit()
    return batch_id


def run(connector, attempts, at: datetime | None = None, now: datetime | None = None) -> int:  # type: ignore[no-untyped-def]
    """Log a batch and evaluate it; returns the batch id."""
    at = at or utcnow()
    batch_id = log_batch(connector, attempts, at)
    with writing():
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


def announced(user=None) -> list[Notification]:  # type: ignore[no-untyped-def]
    """The notifications pushed as news: those not gathered into another."""
    return [n for n in notifications(user) if n.gathered_into_id is None]


def affected_ids(alert: Alert) -> set[int]:
    from dashboard.models import AlertRecord

    return set(db.session.scalars(sa.select(AlertRecord.record_id).where(AlertRecord.alert_id == alert.id)))


def set_status(record: SyncRecord, status: str) -> None:
    with writing():
        _set_status(record, status)


def _set_status(record: SyncRecord, status: str) -> None:
    db.session.execute(sa.update(SyncRecord).where(SyncRecord.id == record.id).values(status=status))
    db.session.commit()
