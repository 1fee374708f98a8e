"""An administrator's hand on an open alert: acknowledge it ("I'm on it"), snooze it until a time, end a snooze.

Each function works in the caller's transaction under the organization's lock, as the writer does, so an
acknowledgement and an evaluation of the same organization take turns; the caller commits. What the columns
do elsewhere: pending emails and escalation skip an acknowledged alert, emails wait while it is snoozed, and the
periodic scan reminds its administrators once when a snooze ends while it is open. Its resolution is announced
either way (the writer does that). Each recorded action is in the organization's audit log too, in the same
transaction, so a refused one leaves no entry.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from dashboard import audit
from dashboard.alerts.writer import lock_organization, record_event
from dashboard.extensions import db
from dashboard.live.publish import organization_channel, queue_event, user_channel
from dashboard.models import Alert, Notification, User
from dashboard.vocabulary import AlertEventKind, AlertStatus, AuditAction, LiveEvent
from dashboard.webhooks import outbox as webhook_outbox

MAX_NOTE_LENGTH = 500
MAX_SNOOZE = timedelta(days=30)
SNOOZE_ENDED = "ended"
"""The detail of the snoozed event recorded when an administrator ends a snooze early."""


class Refused(ValueError):
    """The alert cannot be handled as asked; the message says why, for the administrator."""


def acknowledge(alert: Alert, user: User, note: str, now: datetime) -> Alert:
    """Record that `user` is on it, once; webhooks that want acknowledgements hear of it.

    Raises:
        Refused: the note is too long, the alert is resolved, or someone acknowledged it already.
    """
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise Refused(_("The note can be at most %(num)d characters long.", num=MAX_NOTE_LENGTH))
    alert = _locked(alert)
    _must_be_open(alert)
    if alert.acknowledged_at is not None:
        by = alert.acknowledged_by.name if alert.acknowledged_by else _("a former user")
        raise Refused(_("%(name)s acknowledged this alert already.", name=by))
    alert.acknowledged_at = now
    alert.acknowledged_by = user  # the relationship too: webhooks' payload names who, before the commit
    alert.acknowledgement_note = note
    record_event(alert, AlertEventKind.ACKNOWLEDGED, now, user_id=user.id, detail=note)
    _audit(AuditAction.ALERT_ACKNOWLEDGED, alert, user, now, reason=note or None)
    webhook_outbox.queue_for_alert(alert, AlertEventKind.ACKNOWLEDGED.value, now)
    _changed(alert)
    return alert


def snooze(alert: Alert, user: User, until: datetime, now: datetime) -> Alert:
    """Hold the alert's notifications back until `until` (naive UTC); a new snooze replaces a running one.

    Raises:
        Refused: `until` is not in the future or more than 30 days ahead, or the alert is resolved.
    """
    check_snooze_time(until, now)
    alert = _locked(alert)
    _must_be_open(alert)
    alert.snoozed_until = until
    alert.snoozed_by_id = user.id
    record_event(alert, AlertEventKind.SNOOZED, now, user_id=user.id, detail=until.isoformat() + "Z")
    _audit(AuditAction.ALERT_SNOOZED, alert, user, now, detail={"until": until.isoformat() + "Z"})
    _changed(alert)
    return alert


def end_snooze(alert: Alert, user: User, now: datetime) -> Alert:
    """End a running snooze now: notifications go out as due again, and no reminder is sent for it.

    Raises:
        Refused: the alert is resolved or not snoozed.
    """
    alert = _locked(alert)
    _must_be_open(alert)
    if not is_snoozed(alert, now):
        raise Refused(_("This alert is not snoozed."))
    alert.snoozed_until = None
    alert.snoozed_by_id = None
    record_event(alert, AlertEventKind.SNOOZED, now, user_id=user.id, detail=SNOOZE_ENDED)
    _audit(AuditAction.ALERT_UNSNOOZED, alert, user, now)
    _changed(alert)
    return alert


def is_snoozed(alert: Alert, now: datetime) -> bool:
    return alert.snoozed_until is not None and alert.snoozed_until > now


def check_snooze_time(until: datetime, now: datetime) -> None:
    """A snooze ends in the future, at most 30 days ahead.

    Raises:
        Refused: with the message for the administrator.
    """
    if until <= now:
        raise Refused(_("Choose a time in the future."))
    if until > now + MAX_SNOOZE:
        raise Refused(_("Choose a time at most %(num)d days ahead.", num=MAX_SNOOZE.days))


def _locked(alert: Alert) -> Alert:
    """The alert as it is under its organization's lock (an evaluation may have resolved it meanwhile)."""
    assert alert.organization_id is not None, "only an organization's alert is acknowledged or snoozed"
    lock_organization(alert.organization_id)
    return db.session.scalars(
        sa.select(Alert).where(Alert.id == alert.id).execution_options(populate_existing=True)
    ).one()


def _must_be_open(alert: Alert) -> None:
    if alert.status != AlertStatus.OPEN:
        raise Refused(_("This alert is resolved: there is nothing left to do for it."))


def _audit(action: AuditAction, alert: Alert, user: User, now: datetime, **facts: Any) -> None:
    audit.record(action, organization_id=alert.organization_id, actor=user, target=("alert", alert.id, alert.title),
                 at=now, **facts)


def _changed(alert: Alert) -> None:
    """Open pages of the organization show the change, and the trays listing the alert refresh quietly."""
    assert alert.organization_id is not None
    queue_event(organization_channel(alert.organization_id), LiveEvent.ALERT_CHANGED, {"alert_id": alert.id})
    holders = db.session.scalars(
        sa.select(Notification.user_id).where(Notification.alert_id == alert.id).distinct()
        .order_by(Notification.user_id)
    )
    for user_id in holders:
        queue_event(user_channel(user_id), LiveEvent.TRAY_CHANGED, {"alert_id": alert.id})
