"""The status screen's connector panel: each connector's waiting records and next sync, and the errors in the window."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Connector, HourlyAttemptCount, Organization, SyncRecord, utcnow
from dashboard.sync.connectors import registry
from dashboard.vocabulary import WAITING_STATUSES, RecordStatus


@dataclass(frozen=True)
class ConnectorState:
    connector: Connector
    pending: int
    failed: int
    oldest_waiting_at: datetime | None
    """The approval time of the oldest record not yet synced (pending or failed)."""
    next_sync_at: datetime | None
    """When the scheduler syncs it next; None before its first batch, when disabled or not pushed by us."""
    sync_due: bool = False
    """True when the next sync's time has passed: the scheduler's next run takes it."""

    @property
    def provider(self) -> registry.Provider:
        return registry.provider(self.connector.provider)

    @property
    def scheduled(self) -> bool:
        """True when this service's scheduler pushes the connector's records (enabled, and not external)."""
        return self.connector.enabled and self.provider.pushed


@dataclass(frozen=True)
class ConnectorPanel:
    connectors: list[ConnectorState]
    errors_in_window: int
    error_threshold: int
    window_hours: int

    @property
    def above_threshold(self) -> bool:
        return self.errors_in_window > self.error_threshold


def connector_panel(organization: Organization, interval_seconds: int, now: datetime | None = None) -> ConnectorPanel:
    """The organization's connectors with their waiting records, and its failed attempts in the error window."""
    now = now or utcnow()
    connectors = db.session.scalars(
        sa.select(Connector).where(Connector.organization_id == organization.id).order_by(Connector.id)
    ).all()
    counts: dict[tuple[int, str], tuple[int, datetime | None]] = {
        (row[0], row[1]): (row[2], row[3]) for row in db.session.execute(
            # by connector: its (connector_id, status, approved_at) index covers the query
            sa.select(SyncRecord.connector_id, SyncRecord.status, sa.func.count(), sa.func.min(SyncRecord.approved_at))
            .where(SyncRecord.connector_id.in_([c.id for c in connectors] or [-1]),
                   SyncRecord.status.in_(WAITING_STATUSES))
            .group_by(SyncRecord.connector_id, SyncRecord.status)
        ).all()
    }
    states = []
    for c in connectors:
        pending, oldest_pending = counts.get((c.id, RecordStatus.PENDING), (0, None))
        failed, oldest_failed = counts.get((c.id, RecordStatus.FAILED), (0, None))
        oldest = min((t for t in (oldest_pending, oldest_failed) if t is not None), default=None)
        next_sync = None
        if c.enabled and registry.provider(c.provider).pushed and c.last_batch_at is not None:
            next_sync = c.last_batch_at + timedelta(seconds=interval_seconds)
        states.append(ConnectorState(c, pending, failed, oldest, next_sync, next_sync is not None and next_sync <= now))
    return ConnectorPanel(
        connectors=states,
        errors_in_window=errors_in_window(organization, now),
        error_threshold=organization.error_threshold,
        window_hours=organization.error_window_hours,
    )


def errors_in_window(organization: Organization, now: datetime) -> int:
    """Failed attempts in the organization's error window, from the hourly counters."""
    start = now - timedelta(hours=organization.error_window_hours)
    return int(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(HourlyAttemptCount.failures), 0))
        .where(HourlyAttemptCount.organization_id == organization.id, HourlyAttemptCount.hour > start)
    ) or 0)
