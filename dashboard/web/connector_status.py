"""The status screen's connector panel: each connector's health, waiting records and next sync, and the errors in the
window."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Connector, HourlyAttemptCount, Organization, SyncAttempt, SyncBatch, SyncRecord, utcnow
from dashboard.sync.connectors import registry
from dashboard.vocabulary import WAITING_STATUSES, AttemptOutcome, RecordStatus


class Health(StrEnum):
    """How a connector is doing, beyond its switch."""

    DISABLED = "disabled"
    FAILING = "failing"
    """Its latest batch failed every record: nothing has synced since `failing_since`."""
    SOME_FAILING = "some_failing"
    """It syncs, but some of its records failed."""
    NOT_STARTED = "not_started"
    """Enabled, and no attempt yet."""
    WORKING = "working"


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
    health: Health = Health.WORKING
    failing_since: datetime | None = None
    """For a failing connector, its first failure since it last synced a record."""

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
    """The organization's connectors (not the removed ones) with their waiting records, and its failed attempts in
    the error window."""
    now = now or utcnow()
    connectors = db.session.scalars(
        sa.select(Connector).where(Connector.organization_id == organization.id, Connector.removed_at.is_(None))
        .order_by(Connector.id)
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
        health, failing_since = connector_health(c, failed)
        states.append(ConnectorState(c, pending, failed, oldest, next_sync, next_sync is not None and next_sync <= now,
                                     health, failing_since))
    return ConnectorPanel(
        connectors=states,
        errors_in_window=errors_in_window(organization, now),
        error_threshold=organization.error_threshold,
        window_hours=organization.error_window_hours,
    )


def connector_health(connector: Connector, failed_records: int) -> tuple[Health, datetime | None]:
    """The connector's health from its latest batch: failing (every attempt of it failed) since its first failure
    after its last success, syncing with some failed records, not started, or working."""
    if not connector.enabled:
        return Health.DISABLED, None
    latest = db.session.execute(
        sa.select(SyncBatch.attempt_count, SyncBatch.failure_count)
        .where(SyncBatch.organization_id == connector.organization_id, SyncBatch.connector_id == connector.id,
               SyncBatch.attempt_count > 0)
        .order_by(SyncBatch.id.desc()).limit(1)
    ).first()
    if latest is None:
        return Health.NOT_STARTED, None
    attempts, failures = latest
    if failures < attempts:
        return (Health.SOME_FAILING if failed_records else Health.WORKING), None
    failures_since_success = (
        sa.select(SyncAttempt.attempted_at)
        .join(SyncRecord, SyncRecord.id == SyncAttempt.record_id)
        .where(SyncAttempt.organization_id == connector.organization_id,
               SyncAttempt.outcome == AttemptOutcome.FAILURE, SyncRecord.connector_id == connector.id)
    )
    if connector.last_success_at is not None:
        failures_since_success = failures_since_success.where(SyncAttempt.attempted_at > connector.last_success_at)
    return Health.FAILING, db.session.scalar(failures_since_success.order_by(SyncAttempt.attempted_at).limit(1))


def errors_in_window(organization: Organization, now: datetime) -> int:
    """Failed attempts in the organization's error window, from the hourly counters."""
    start = now - timedelta(hours=organization.error_window_hours)
    return int(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(HourlyAttemptCount.failures), 0))
        .where(HourlyAttemptCount.organization_id == organization.id, HourlyAttemptCount.hour > start)
    ) or 0)
