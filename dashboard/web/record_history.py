"""A record's history: the sync log's attempts, alert events and administrator actions, newest first."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from dashboard.extensions import db
from dashboard.models import AlertEvent, RecordAction, SyncAttempt, SyncRecord, User

HISTORY_LIMIT = 100


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
    late: bool = False
    """An attempt reported after a newer one of the record: logged, but it changed nothing."""


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
        sa.select(RecordAction.created_at, RecordAction.action, RecordAction.reason, User.name)
        .outerjoin(User, User.id == RecordAction.user_id)
        .where(RecordAction.record_id == record.id)
        .order_by(RecordAction.created_at.desc(), RecordAction.id.desc()).limit(limit)
    ).all()
    events = db.session.execute(
        sa.select(AlertEvent.at, AlertEvent.kind, AlertEvent.alert_id, AlertEvent.detail)
        .where(AlertEvent.record_id == record.id)
        .order_by(AlertEvent.at.desc(), AlertEvent.id.desc()).limit(limit)
    ).all()
    entries = [HistoryEntry(at=a[0], kind="attempt", outcome=a[1], error_code=a[2], message=a[3],
                            failure_streak=a[4], user_name=a[5], late=a[6]) for a in attempts]
    entries += [HistoryEntry(at=a[0], kind="action", action=a[1], message=a[2], user_name=a[3]) for a in actions]
    entries += [HistoryEntry(at=e[0], kind="alert", alert_kind=e[1], alert_id=e[2], message=e[3] or None)
                for e in events]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]
