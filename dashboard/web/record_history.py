"""A record's history: the sync log's attempts, alert events and administrator actions, newest first.

An alert event concerns a record when it names the record (the record joined the alert), or when it names no
record and happened while the record was among the alert's records: raised (by it, when it was there from the
start), notified, announced, acknowledged, snoozed, resolved. Reading a notification of such an alert is shown as
the administrator reading the alert (`READ`); acknowledging it ("I'm on it") is an alert event of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from dashboard.alerts.titles import alert_title
from dashboard.extensions import db
from dashboard.models import (
    Alert, AlertEvent, AlertRecord, AuditEntry, Notification, SyncAttempt, SyncRecord, User,
)
from dashboard.vocabulary import AlertEventKind

HISTORY_LIMIT = 100
READ = "read"
"""The history's name for an administrator reading a notification of the alert (no alert event records it)."""


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    kind: str
    """"attempt", "action" or "alert"."""
    outcome: str | None = None
    error_code: str | None = None
    message: str | None = None
    failure_streak: int | None = None
    user_name: str | None = None
    action: str | None = None
    alert_id: int | None = None
    alert_kind: str | None = None
    """An AlertEventKind, or READ."""
    alert_title: str | None = None
    alert_opened_at: datetime | None = None
    """When the alert opened: a reminder says how long it had been open."""
    raised_by_it: bool = False
    """For a raise: the record was among the records that raised the alert."""
    late: bool = False
    """An attempt reported after a newer one of the record: logged, but it changed nothing."""

    @property
    def is_read(self) -> bool:
        """An administrator read a notification of the alert."""
        return self.alert_kind == READ


def record_history(record: SyncRecord, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    """The newest `limit` entries of the record's sync log, interleaved by time."""
    triggered_by = so.aliased(User)
    attempts = db.session.execute(
        sa.select(SyncAttempt.attempted_at, SyncAttempt.outcome, SyncAttempt.error_code, SyncAttempt.error_message,
                  SyncAttempt.failure_streak, triggered_by.name, SyncAttempt.late)
        .outerjoin(triggered_by, triggered_by.id == SyncAttempt.triggered_by_id)
        .where(SyncAttempt.record_id == record.id)
        .order_by(SyncAttempt.attempted_at.desc(), SyncAttempt.id.desc()).limit(limit)
    ).all()
    actions = db.session.execute(
        # the record's actions are in the audit log (retry, exclude, include)
        sa.select(AuditEntry.at, AuditEntry.action, AuditEntry.reason, User.name)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .where(AuditEntry.record_id == record.id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    ).all()
    told = so.aliased(User)
    events = db.session.execute(
        # its own joins, and every event of its alerts that is about no record in particular (raised, notified,
        # resolved, announced ...) from the moment it was among the alert's records
        sa.select(AlertEvent.at, AlertEvent.kind, AlertEvent.alert_id, AlertEvent.detail, told.name,
                  AlertRecord.joined_at, Alert.opened_at)
        .join(AlertRecord, sa.and_(AlertRecord.alert_id == AlertEvent.alert_id, AlertRecord.record_id == record.id))
        .join(Alert, Alert.id == AlertEvent.alert_id)
        .outerjoin(told, told.id == AlertEvent.user_id)
        .where(sa.or_(AlertEvent.record_id == record.id,
                      sa.and_(AlertEvent.record_id.is_(None), AlertEvent.at >= AlertRecord.joined_at)))
        .order_by(AlertEvent.at.desc(), AlertEvent.id.desc()).limit(limit)
    ).all()
    reads = db.session.execute(
        sa.select(Notification.read_at, Notification.alert_id, User.name)
        .join(AlertRecord, sa.and_(AlertRecord.alert_id == Notification.alert_id,
                                   AlertRecord.record_id == record.id))
        .join(Alert, Alert.id == Notification.alert_id)
        .outerjoin(User, User.id == Notification.user_id)
        .where(Notification.read_at.is_not(None), Notification.read_at >= AlertRecord.joined_at)
        .order_by(Notification.read_at.desc()).limit(limit)
    ).all()
    titles = _titles({row.alert_id for row in events} | {row.alert_id for row in reads})
    entries = [HistoryEntry(at=a[0], kind="attempt", outcome=a[1], error_code=a[2], message=a[3],
                            failure_streak=a[4], user_name=a[5], late=a[6]) for a in attempts]
    entries += [HistoryEntry(at=a[0], kind="action", action=a[1], message=a[2], user_name=a[3]) for a in actions]
    entries += [HistoryEntry(at=at, kind="alert", alert_kind=kind, alert_id=alert_id, message=detail or None,
                             user_name=name, alert_title=titles.get(alert_id), alert_opened_at=opened_at,
                             raised_by_it=kind == AlertEventKind.RAISED and joined_at == at)
                for at, kind, alert_id, detail, name, joined_at, opened_at in events]
    entries += [HistoryEntry(at=at, kind="alert", alert_kind=READ, alert_id=alert_id, user_name=name,
                             alert_title=titles.get(alert_id)) for at, alert_id, name in reads]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def _titles(alert_ids: set[int]) -> dict[int, str]:
    """Each alert's title as it reads now, in the reader's language (`alert_title`)."""
    if not alert_ids:
        return {}
    return {alert.id: alert_title(alert, problem=True)
            for alert in db.session.scalars(sa.select(Alert).where(Alert.id.in_(alert_ids)))}
