"""The one place that opens, joins and resolves alerts, and notifies people of them.

Every function changes rows in the caller's transaction, which holds the
organization's lock (`lock_organization`: a row lock on PostgreSQL; on SQLite
the writer's BEGIN IMMEDIATE already serializes); the caller commits. The
database's unique indexes (one open alert per fingerprint, one notification
per alert, user and event) back the "exactly once" that the lock gives. Live
events are queued here and published after the commit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from dashboard.alerts import recipients, rules
from dashboard.alerts.content import alert_link, describe
from dashboard.extensions import db
from dashboard.live.publish import queue_event, user_channel
from dashboard.models import Alert, AlertEvent, AlertRecord, Notification, Organization, PlatformSettings
from dashboard.vocabulary import AlertEventKind, AlertStatus, LiveEvent, NotificationEvent


@dataclass
class Evaluation:
    """What one evaluation changed, to decide the platform alert and the live pushes."""

    organization: Organization
    now: datetime
    opened_or_resolved: bool = False
    touched: set[int] = field(default_factory=set)
    raised: set[int] = field(default_factory=set)
    """Alerts raised in this evaluation: notified once their text is known, their first records not "joined"."""


def lock_organization(organization_id: int) -> Organization:
    """Serialize evaluations of one organization (FOR UPDATE on PostgreSQL; SQLite writers are serial)."""
    organization = db.session.scalars(
        sa.select(Organization).where(Organization.id == organization_id).with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return organization


def lock_platform() -> PlatformSettings:
    """Serialize changes to the platform alert; the settings row is created with its defaults if missing."""
    settings = db.session.scalars(
        sa.select(PlatformSettings).where(PlatformSettings.id == 1).with_for_update()
    ).one_or_none()
    if settings is None:
        settings = PlatformSettings.defaults()
        db.session.add(settings)
        db.session.flush()
    return settings


def open_alert(fingerprint: str) -> Alert | None:
    return db.session.scalars(
        sa.select(Alert).where(Alert.fingerprint == fingerprint, Alert.status == AlertStatus.OPEN)
    ).one_or_none()


def raise_alert(ev: Evaluation, rule: str, fingerprint: str, *, opened_at: datetime | None = None,
                record_type: str | None = None, error_code: str | None = None,
                connector_id: int | None = None) -> Alert:
    org = ev.organization
    alert = Alert(organization_id=org.id, rule=rule, fingerprint=fingerprint, status=AlertStatus.OPEN, title="",
                  record_type=record_type, error_code=error_code, connector_id=connector_id,
                  opened_at=ev.now, last_seen_at=ev.now, details={})
    if rule == rules.ERROR_THRESHOLD:
        wait = lock_platform().grouping_wait_seconds
        alert.global_due_at = ev.now + timedelta(seconds=wait)
    db.session.add(alert)
    db.session.flush()
    ev.opened_or_resolved = True
    ev.touched.add(alert.id)
    ev.raised.add(alert.id)
    record_event(alert, AlertEventKind.RAISED, ev.now,
                 detail=f"crossing at {opened_at:%Y-%m-%d %H:%M:%S}" if opened_at else "")
    return alert


def join(ev: Evaluation, alert: Alert, record_ids: list[int]) -> None:
    """Add records to an alert's affected set, each once; joins notify nobody."""
    if not record_ids:
        return
    existing = set(db.session.scalars(
        sa.select(AlertRecord.record_id).where(AlertRecord.alert_id == alert.id,
                                               AlertRecord.record_id.in_(set(record_ids)))
    ))
    new = [r for r in dict.fromkeys(record_ids) if r not in existing]
    if not new:
        return
    db.session.execute(sa.insert(AlertRecord), [{"alert_id": alert.id, "record_id": r, "joined_at": ev.now}
                                                for r in new])
    if alert.id not in ev.raised:
        db.session.execute(sa.insert(AlertEvent), [{"alert_id": alert.id, "kind": AlertEventKind.JOINED, "at": ev.now,
                                                    "record_id": r, "detail": ""} for r in new])
    alert.last_seen_at = ev.now
    ev.touched.add(alert.id)


def resolve(ev: Evaluation, alert: Alert) -> None:
    if alert.id in ev.raised:  # raised and cleared in one evaluation: tell of the raise before the resolution
        refresh_content(alert)
        notify(alert, recipients.for_raise(alert), NotificationEvent.RAISED, ev.now)
    close(alert, ev.now)
    ev.opened_or_resolved = True
    ev.touched.add(alert.id)


def close(alert: Alert, now: datetime) -> None:
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    if alert.global_announced_at is None:
        alert.global_due_at = None  # resolved within the grouping wait: never announced
    record_event(alert, AlertEventKind.RESOLVED, now)
    refresh_content(alert)
    notify(alert, recipients.for_resolution(alert), NotificationEvent.RESOLVED, now)


def notify(alert: Alert, user_ids: list[int], event: str, now: datetime) -> None:
    """Create one notification per user and event; the unique constraint backs "exactly once"."""
    if not user_ids:
        return
    already = set(db.session.scalars(
        sa.select(Notification.user_id).where(Notification.alert_id == alert.id, Notification.event == event)
    ))
    for user_id in user_ids:
        if user_id in already:
            continue
        notification = Notification(user_id=user_id, alert_id=alert.id, event=event,
                                    organization_id=alert.organization_id, title=alert.title, created_at=now)
        db.session.add(notification)
        db.session.flush()
        record_event(alert, AlertEventKind.NOTIFIED, now, user_id=user_id, detail=event)
        queue_event(user_channel(user_id), LiveEvent.NOTIFICATION,
                    {"id": notification.id, "alert_id": alert.id, "event": event, "title": alert.title,
                     "link": f"/notifications/{notification.id}"})


def record_event(alert: Alert, kind: str, at: datetime, *, record_id: int | None = None, user_id: int | None = None,
           detail: str = "") -> None:
    db.session.add(AlertEvent(alert_id=alert.id, kind=kind, at=at, record_id=record_id, user_id=user_id,
                              detail=detail[:1000]))


def refresh_content(alert: Alert) -> None:
    """Recompute the alert's title, text and figures from its affected records."""
    db.session.flush()
    content = describe(alert)
    alert.title = _fits(content.title, TITLE_MAX_LENGTH)
    alert.body = content.body
    alert.affected_count = content.details.get("affected_count", alert.affected_count)
    alert.details = {**(alert.details or {}), **content.details, "link": alert_link(alert)}


TITLE_MAX_LENGTH = 300
"""The alert and notification title columns (PostgreSQL refuses longer; long organization names make them)."""


def _fits(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"
