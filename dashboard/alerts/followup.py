"""What the minute scan follows up on: maintenance windows that ended, snoozes that ended, and escalation.

Each follow-up finds its due rows without a lock, then handles each organization in its own short
transaction under the organization's lock (the lock the writer's evaluations take), re-reading the rows
first: a second scan, or a second worker, finds them handled and does nothing. The notifications' unique
constraint (one per alert, user and event) backs "at most once" as well.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import ngettext

from dashboard.alerts import delivery, recipients, rules, writer
from dashboard.extensions import db
from dashboard.live.publish import organization_channel, queue_event
from dashboard.models import Alert, MaintenanceWindow, Notification, PlatformSettings
from dashboard.vocabulary import AlertEventKind, AlertStatus, LiveEvent, NotificationEvent

RecountPlatform = Callable[[datetime], None]
"""The engine's recount of the platform incident (passed in: the engine runs these follow-ups)."""


def run_due(now: datetime, recount_platform: RecountPlatform) -> None:
    """Every follow-up due at `now`, each committed per organization. Windows first: an alert a window
    held back counts for escalation only once the window has ended."""
    end_windows(now, recount_platform)
    end_snoozes(now)
    escalate(now)


# Maintenance windows ---------------------------------------------------------------------------------------

def end_windows(now: datetime, recount_platform: RecountPlatform) -> None:
    """Windows that have ended: remind the organization's admins of the alerts they held back that are still
    open, then let those alerts count toward the platform incident again."""
    due = db.session.execute(
        sa.select(MaintenanceWindow.organization_id, MaintenanceWindow.id)
        .where(MaintenanceWindow.closed_at.is_(None), MaintenanceWindow.ends_at <= now)
        .order_by(MaintenanceWindow.ends_at, MaintenanceWindow.id)
    ).all()
    db.session.rollback()
    for organization_id, window_id in due:
        writer.lock_organization(organization_id)
        window = db.session.get(MaintenanceWindow, window_id, populate_existing=True)
        if window is not None and window.closed_at is None and window.ends_at <= now:
            close_window(window, now, recount_platform)
        db.session.commit()


def close_window(window: MaintenanceWindow, now: datetime, recount_platform: RecountPlatform) -> None:
    """Handle a window's end in the caller's transaction, which holds its organization's lock."""
    held = db.session.scalars(
        sa.select(Alert).where(Alert.muted_by_window_id == window.id, Alert.status == AlertStatus.OPEN)
        .order_by(Alert.id)
    ).all()
    admins = recipients.organization_admins(window.organization_id)
    for alert in held:
        writer.record_event(alert, AlertEventKind.REMINDED, now, detail=f"maintenance window {window.id} ended")
        writer.notify(alert, admins, NotificationEvent.REMINDED, now,
                      title=_fits(_("Still open after the maintenance window: %(title)s", title=alert.title)))
        alert.muted_by_window_id = None
        queue_event(organization_channel(window.organization_id), LiveEvent.ALERT_CHANGED, {"alert_id": alert.id})
    window.closed_at = now
    if held:
        db.session.flush()
        recount_platform(now)


# Snoozes ---------------------------------------------------------------------------------------------------

def end_snoozes(now: datetime) -> None:
    """Snoozes that have ended: an alert still open reminds its organization's admins once; the snooze is
    cleared either way."""
    due = db.session.execute(
        sa.select(Alert.organization_id, Alert.id)
        .where(Alert.snoozed_until.is_not(None), Alert.snoozed_until <= now).order_by(Alert.snoozed_until, Alert.id)
    ).all()
    db.session.rollback()
    for organization_id, alert_ids in _by_organization(due).items():
        writer.lock_organization(organization_id)
        for alert in _reread(alert_ids, Alert.snoozed_until <= now):
            alert.snoozed_until = None
            if alert.status == AlertStatus.OPEN:
                writer.record_event(alert, AlertEventKind.REMINDED, now, detail="snooze ended")
                writer.notify(alert, recipients.organization_admins(organization_id), NotificationEvent.REMINDED,
                              now, title=_fits(_("Still open after its snooze: %(title)s", title=alert.title)))
            queue_event(organization_channel(organization_id), LiveEvent.ALERT_CHANGED, {"alert_id": alert.id})
        db.session.commit()


# Escalation ------------------------------------------------------------------------------------------------

def escalate(now: datetime) -> None:
    """Organization alerts open and unacknowledged past the escalation time are escalated once, to the global
    admins and the organization's admins. Alerts a window still holds back, or snoozed until later, wait."""
    hours = _escalation_hours()
    due = db.session.execute(
        sa.select(Alert.organization_id, Alert.id).where(*_escalation_due(now, hours)).order_by(Alert.opened_at)
    ).all()
    db.session.rollback()
    for organization_id, alert_ids in _by_organization(due).items():
        writer.lock_organization(organization_id)
        admins = recipients.organization_admins(organization_id)
        global_admins = recipients.global_admins()
        gather = into_platform_alert(set(global_admins))
        for alert in _reread(alert_ids, *_escalation_due(now, hours)):
            alert.escalated_at = now
            opened_for = int((now - alert.opened_at).total_seconds() // 3600)
            writer.record_event(alert, AlertEventKind.ESCALATED, now,
                                detail=f"open {opened_for} h, not acknowledged")
            title = ngettext("Escalated: open for %(num)d hour and nobody has acknowledged it: %(title)s",
                             "Escalated: open for %(num)d hours and nobody has acknowledged it: %(title)s",
                             opened_for, title=alert.title)
            writer.notify(alert, sorted(set(admins) | set(global_admins)), NotificationEvent.ESCALATED, now,
                          title=_fits(title), gather=gather)
            queue_event(organization_channel(organization_id), LiveEvent.ALERT_CHANGED, {"alert_id": alert.id})
        db.session.commit()


def into_platform_alert(global_admins: set[int]) -> delivery.Gather:
    """While a platform incident is open, a global admin hears of an escalation through their notification
    of the incident (listed there, not pushed as news); the organization's admins are told on their own."""
    platform = writer.open_alert(rules.PLATFORM_FINGERPRINT)

    def gather(user_id: int) -> Notification | None:
        if platform is None or user_id not in global_admins:
            return None
        return db.session.scalars(
            sa.select(Notification).where(Notification.alert_id == platform.id, Notification.user_id == user_id,
                                          Notification.event == NotificationEvent.RAISED)
        ).first()
    return gather


def _escalation_hours() -> int:
    settings = db.session.get(PlatformSettings, 1)
    return settings.escalation_hours if settings else PlatformSettings.DEFAULT_ESCALATION_HOURS


def _escalation_due(now: datetime, hours: int) -> tuple:
    """The conditions of `ix_alerts_escalation_due`, and the ones that keep an alert waiting."""
    return (Alert.status == AlertStatus.OPEN, Alert.escalated_at.is_(None), Alert.acknowledged_at.is_(None),
            Alert.opened_at <= now - timedelta(hours=hours), Alert.organization_id.is_not(None),
            Alert.muted_by_window_id.is_(None),
            sa.or_(Alert.snoozed_until.is_(None), Alert.snoozed_until <= now))


# Helpers ---------------------------------------------------------------------------------------------------

def _fits(title: str) -> str:
    """A notification title within its column (the alert's own title may nearly fill it)."""
    limit = writer.TITLE_MAX_LENGTH
    return title if len(title) <= limit else title[:limit - 1].rstrip() + "…"


def _by_organization(rows: list) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = defaultdict(list)
    for organization_id, alert_id in rows:
        if organization_id is not None:
            grouped[organization_id].append(alert_id)
    return grouped


def _reread(alert_ids: list[int], *still: sa.ColumnElement[bool]) -> list[Alert]:
    """Those of the alerts still due (`still`) now that the organization's lock is held: another scan, or
    another worker, may have handled them meanwhile."""
    return list(db.session.scalars(
        sa.select(Alert).where(Alert.id.in_(alert_ids), *still).order_by(Alert.id)
        .execution_options(populate_existing=True)
    ))
