"""Alert and notification titles rendered when shown: in the reader's language, with the alert's current figures.

The stored `title` columns stay English snapshots (logs, the API, search); pages, emails, digests and webhook
texts call these functions instead, inside the reader's locale (the request's, or `force_locale`).
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import ngettext

from dashboard.alerts import delivery, rules
from dashboard.alerts.content import TitleFacts, platform_title, problem_title, title_of
from dashboard.extensions import db
from dashboard.models import Alert, AlertEvent, Connector, Notification, Organization
from dashboard.vocabulary import AlertEventKind, AlertStatus, NotificationEvent


def alert_title(alert: Alert, problem: bool = False) -> str:
    """The alert's title now; `problem`: what went wrong even once it is resolved (the raise's title)."""
    if alert.rule == rules.PLATFORM:
        title = platform_title((alert.details or {}).get("organizations", []))
        if alert.status == AlertStatus.RESOLVED and not problem:
            return _("Cleared: %(title)s", title=title)
        return title
    facts = _facts(alert)
    if facts is None:  # figures from before titles were rendered: the stored snapshot is all there is
        return alert.title
    return problem_title(facts) if problem else title_of(facts)


def notification_title(notification: Notification) -> str:
    """A notification's title now: its event said of its alert as the alert is now, or a summary's count."""
    event, alert = notification.event, notification.alert if notification.alert_id else None
    if event == NotificationEvent.SUMMARY:
        return delivery.summary_title(notification)
    if alert is None or not renderable(alert):  # an alert from before titles were rendered: its snapshot
        return notification.title
    if event == NotificationEvent.RESOLVED:
        return alert_title(alert)
    if event == NotificationEvent.FLAPPING:
        return flap_title(alert)
    title = alert_title(alert, problem=True)
    if event == NotificationEvent.ESCALATED:
        hours = int(((alert.escalated_at or notification.created_at) - alert.opened_at).total_seconds() // 3600)
        return ngettext("Escalated: open for %(num)d hour and nobody has acknowledged it: %(title)s",
                        "Escalated: open for %(num)d hours and nobody has acknowledged it: %(title)s",
                        hours, title=title)
    if event == NotificationEvent.REMINDED:
        if _reminded_by_window(notification):
            return _("Still open after the maintenance window: %(title)s", title=title)
        return _("Still open after its snooze: %(title)s", title=title)
    return title


def renderable(alert: Alert) -> bool:
    """Whether the alert's details hold what its title says (every alert refreshed since they were kept)."""
    return alert.rule == rules.PLATFORM or "by_status" in (alert.details or {})


def flap_title(alert: Alert) -> str:
    """The "keeps coming back" title: how often since when, and what comes back (as `delivery.flap_title`)."""
    flap = (alert.details or {}).get("flap", {})
    since = datetime.fromisoformat(flap["since"]) if flap.get("since") else alert.opened_at
    times = db.session.scalar(sa.select(sa.func.count()).select_from(Alert)
                              .where(Alert.fingerprint == alert.fingerprint, Alert.opened_at >= since)) or 1
    organization = alert.organization
    local = since.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(organization.timezone if organization
                                                                      else "UTC"))
    return _("Keeps coming back: %(times)d times since %(time)s. %(title)s", times=times,
             time=f"{local:%H:%M}", title=alert_title(alert, problem=True))


def _facts(alert: Alert) -> TitleFacts | None:
    details = alert.details or {}
    organization = alert.organization or db.session.get(Organization, alert.organization_id)
    if organization is None or not renderable(alert):
        return None
    defaults = {"error_threshold": organization.error_threshold,
                "error_window_hours": organization.error_window_hours,
                "stale_after_hours": organization.stale_after_hours}
    if "connector_name" not in details and alert.connector_id:
        connector = db.session.get(Connector, alert.connector_id)
        defaults["connector_name"] = connector.name if connector else None
    return TitleFacts(rule=alert.rule, resolved=alert.status == AlertStatus.RESOLVED, org_name=organization.name,
                      count=alert.affected_count, record_type=alert.record_type, error_code=alert.error_code,
                      details={**defaults, **details})


def _reminded_by_window(notification: Notification) -> bool:
    """Whether the reminder came at a maintenance window's end (else a snooze's), from the alert's log."""
    detail = db.session.scalar(
        sa.select(AlertEvent.detail).where(AlertEvent.alert_id == notification.alert_id,
                                           AlertEvent.kind == AlertEventKind.REMINDED,
                                           AlertEvent.at == notification.created_at).limit(1))
    return bool(detail and detail.startswith("maintenance window"))
