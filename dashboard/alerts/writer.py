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
from flask import current_app

from dashboard.alerts import delivery, maintenance, quiet, recipients, rules
from dashboard.alerts.content import alert_link, describe
from dashboard.alerts.tray_item import UNREAD_OF_PERSON, tray_event
from dashboard.extensions import db
from dashboard.live.publish import queue_event, user_channel
from dashboard.mail import outbox as mail_outbox
from dashboard.models import Alert, AlertEvent, AlertRecord, Notification, Organization, PlatformSettings, User
from dashboard.vocabulary import WEBHOOK_EVENTS, AlertEventKind, AlertStatus, LiveEvent, NotificationEvent
from dashboard.webhooks import outbox as webhook_outbox


@dataclass
class Evaluation:
    """What one evaluation changed, to decide the platform alert and the live pushes."""

    organization: Organization
    now: datetime
    opened_or_resolved: bool = False
    touched: set[int] = field(default_factory=set)
    raised: set[int] = field(default_factory=set)
    """Alerts raised in this evaluation: notified once their text is known, their first records not "joined"."""
    raised_records: dict[int, set[int]] = field(default_factory=dict)
    """The records joined to each alert raised in this evaluation: all it holds (only `join` adds them)."""
    _open: dict[str, Alert] | None = None

    def open_alerts(self) -> dict[str, Alert]:
        """The organization's open alerts by fingerprint, read once: the organization's lock keeps others from
        opening or resolving them meanwhile, and `raise_alert` and `resolve` keep the map."""
        if self._open is None:
            self._open = {alert.fingerprint: alert for alert in db.session.scalars(
                _OPEN_ALERTS, {"organization_id": self.organization.id})}
        return self._open

    def open_alert(self, fingerprint: str) -> Alert | None:
        return self.open_alerts().get(fingerprint)


_OPEN_ALERTS = sa.select(Alert).where(Alert.organization_id == sa.bindparam("organization_id"),
                                      Alert.status == AlertStatus.OPEN).order_by(Alert.id)
"""An organization's open alerts. This module's statements are built once, with bind parameters: building one
and its cache key costs more CPU than SQLite takes to run it."""
_LOCK_ORGANIZATION = (sa.select(Organization).where(Organization.id == sa.bindparam("organization_id"))
                      .with_for_update().execution_options(populate_existing=True))
_LOCK_PLATFORM = sa.select(PlatformSettings).where(PlatformSettings.id == 1).with_for_update()
_OPEN_BY_FINGERPRINT = sa.select(Alert).where(Alert.fingerprint == sa.bindparam("fingerprint"),
                                              Alert.status == AlertStatus.OPEN)
_TOLD = sa.select(Notification.user_id).where(Notification.alert_id == sa.bindparam("alert_id"),
                                              Notification.event == sa.bindparam("event"))
"""Who has a notification of this alert and event."""
_PEOPLE = sa.select(User, UNREAD_OF_PERSON).where(User.id.in_(sa.bindparam("user_ids", expanding=True)))
"""The people of a notification round, each with their unread count before it."""


def lock_organization(organization_id: int) -> Organization:
    """Serialize evaluations of one organization (FOR UPDATE on PostgreSQL; SQLite writers are serial)."""
    return db.session.scalars(_LOCK_ORGANIZATION, {"organization_id": organization_id}).one()


def lock_platform() -> PlatformSettings:
    """Serialize changes to the platform alert; the settings row is created with its defaults if missing."""
    settings = db.session.scalars(_LOCK_PLATFORM).one_or_none()
    if settings is None:
        settings = PlatformSettings.defaults()
        db.session.add(settings)
        db.session.flush()
    return settings


def open_alert(fingerprint: str) -> Alert | None:
    return db.session.scalars(_OPEN_BY_FINGERPRINT, {"fingerprint": fingerprint}).one_or_none()


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
    ev.open_alerts()[fingerprint] = alert
    policy = delivery.flap_policy()
    flap = quiet.flap_state(delivery.earlier_alerts(fingerprint, alert.id, policy), ev.now, policy)
    if flap.flap != quiet.Flap.NO:
        alert.flapping = True
    if flap.flap == quiet.Flap.STARTS:
        alert.details = {"flap": {"since": flap.since.isoformat()}}  # type: ignore[union-attr]
    ev.opened_or_resolved = True
    ev.touched.add(alert.id)
    ev.raised.add(alert.id)
    detail = f"crossing at {opened_at:%Y-%m-%d %H:%M:%S}" if opened_at else ""
    if alert.flapping:
        detail = (detail + "; " if detail else "") + "flapping: keeps coming back"
    record_event(alert, AlertEventKind.RAISED, ev.now, detail=detail)
    window = maintenance.muting_window(alert, ev.now)
    if window is not None:
        alert.muted_by_window_id = window.id
        record_event(alert, AlertEventKind.MUTED, ev.now, detail=f"maintenance window {window.id}")
    return alert


def announce_raise(alert: Alert, now: datetime) -> None:
    """Tell the organization's admins of a raise: once, or, while it flaps, once for the whole episode.

    An alert raised in a maintenance window tells nobody now: the window's end reminds of it if still open.
    """
    if alert.muted_by_window_id is not None:
        return
    users = recipients.for_raise(alert)
    if not alert.flapping:
        notify(alert, users, NotificationEvent.RAISED, now)
    elif "flap" in (alert.details or {}):
        alert.details = {**alert.details, "flap": {**alert.details["flap"], "title": alert.title}}
        notify(alert, users, NotificationEvent.FLAPPING, now, title=delivery.flap_title(alert))
    else:
        notify(alert, users, NotificationEvent.RAISED, now, gather=delivery.into_flap_notification(alert))


def join(ev: Evaluation, alert: Alert, record_ids: list[int]) -> None:
    """Add records to an alert's affected set, each once; joins notify nobody."""
    if not record_ids:
        return
    if alert.id in ev.raised:
        existing = ev.raised_records.setdefault(alert.id, set())
    else:
        existing = set(db.session.scalars(
            sa.select(AlertRecord.record_id).where(AlertRecord.alert_id == alert.id,
                                                   AlertRecord.record_id.in_(set(record_ids)))
        ))
    new = [r for r in dict.fromkeys(record_ids) if r not in existing]
    if not new:
        return
    if alert.id in ev.raised:
        existing.update(new)
    db.session.execute(sa.insert(AlertRecord.__table__),  # plain rows: no objects to track, nothing to flush first
                       [{"alert_id": alert.id, "record_id": r, "joined_at": ev.now} for r in new])
    if alert.id not in ev.raised:
        db.session.execute(sa.insert(AlertEvent.__table__), [
            {"alert_id": alert.id, "kind": AlertEventKind.JOINED, "at": ev.now, "record_id": r, "detail": ""}
            for r in new])
    if alert.last_seen_at != ev.now:  # an unchanged object leaves the next query nothing to flush
        alert.last_seen_at = ev.now
    ev.touched.add(alert.id)


def resolve(ev: Evaluation, alert: Alert) -> None:
    if alert.id in ev.raised:  # raised and cleared in one evaluation: tell of the raise before the resolution
        refresh_content(alert, ev.now)
        announce_raise(alert, ev.now)
    close(alert, ev.now)
    ev.open_alerts().pop(alert.fingerprint, None)
    ev.opened_or_resolved = True
    ev.touched.add(alert.id)


def close(alert: Alert, now: datetime, *, quietly: str | None = None) -> None:
    """Resolve an alert and tell whoever was told of it; `quietly` (the reason, such as an archived
    organization) resolves it telling nobody, neither people nor webhooks."""
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    if alert.global_announced_at is None or quietly:
        alert.global_due_at = None  # resolved within the grouping wait: never announced
    record_event(alert, AlertEventKind.RESOLVED, now, detail=quietly or "")
    refresh_content(alert, now)
    if quietly is None:
        notify(alert, recipients.for_resolution(alert), NotificationEvent.RESOLVED, now,
               gather=delivery.for_resolution(alert, now))


def notify(alert: Alert, user_ids: list[int], event: str, now: datetime, *, title: str | None = None,
           gather: delivery.Gather | None = None) -> None:
    """Create one notification per user and event; the unique constraint backs "exactly once".

    Each is announced (pushed live, counted against the day's budget), or gathered into another
    notification: the one `gather` names for the person, else their day's summary once the
    organization's budget is spent (`quiet`). Gathered ones are listed, never pushed as news.
    Webhooks that want the event are told of it here too, whoever the people are.
    """
    if event in WEBHOOK_EVENTS or event == NotificationEvent.FLAPPING:  # a flapping alert's first raise is a raise
        webhook_outbox.queue_for_alert(alert, NotificationEvent.RAISED if event == NotificationEvent.FLAPPING
                                       else event, now)
    if not user_ids:
        return
    organization = db.session.get(Organization, alert.organization_id) if alert.organization_id else None
    # Read without flushing first: notifications are flushed as they are made, so pending changes (an alert's
    # text) change nothing these reads count; the first notification's flush writes them.
    with db.session.no_autoflush:
        already = set(db.session.scalars(_TOLD, {"alert_id": alert.id, "event": event}))
        # One read of the people for all their notifications' live events and email choices (held here: the
        # session's identity map keeps an object only while something refers to it).
        people = {person.id: (person, unread) for person, unread in db.session.execute(
            _PEOPLE, {"user_ids": sorted(set(user_ids) - already)})} if set(user_ids) - already else {}
        days = delivery.days_so_far(people, organization, now) if organization is not None and people else {}
    for user_id in user_ids:
        if user_id in already:
            continue
        into = gather(user_id) if gather else None
        if into is None and organization is not None:
            into = delivery.over_budget(user_id, organization, now, days[user_id])
        notification = Notification(user_id=user_id, alert_id=alert.id, event=event,
                                    organization_id=alert.organization_id, title=title or alert.title,
                                    created_at=now, gathered_into_id=into.id if into else None)
        db.session.add(notification)
        db.session.flush()
        if into is None:
            record_event(alert, AlertEventKind.NOTIFIED, now, user_id=user_id, detail=event)
            _announce(notification, *people[user_id])
        else:
            record_event(alert, AlertEventKind.GATHERED, now, user_id=user_id,
                         detail=f"{event} into notification {into.id}")
            _gathered_into(into, *people[user_id])


def _gathered_into(into: Notification, person: User, unread: int) -> None:
    """A summary is announced when it first gathers something; later it only changes its count, quietly."""
    if into.event == NotificationEvent.SUMMARY:
        into.title = delivery.summary_title(into)
    elif into.event == NotificationEvent.FLAPPING and into.alert is not None:
        into.title = delivery.flap_title(into.alert)
    if into.event == NotificationEvent.SUMMARY and delivery.gathered_count(into) == 1:
        _announce(into, person, unread)
    else:
        queue_event(user_channel(into.user_id), LiveEvent.TRAY_CHANGED, {"id": into.id})


def _announce(notification: Notification, person: User, unread: int) -> None:
    """An announced notification is pushed to the person's open pages now, and emailed if it stays unread.

    `unread` is the person's unread count before this round: a round announces one notification to a person (the
    one made, or the summary first gathering it), so theirs is one more now."""
    _push(notification, person, unread + 1)
    mail_outbox.queue_for(notification, notification.created_at)


def _push(notification: Notification, person: User, unread: int) -> None:
    """Tell the person's open pages: the event carries the tray item, rendered for them (`tray_item`)."""
    if not current_app.config.get("LIVE_EVENTS", True):
        return  # a replay's scratch app: nobody watches, so nothing to render
    organization = db.session.get(Organization, notification.organization_id) if notification.organization_id \
        else None
    queue_event(user_channel(notification.user_id), LiveEvent.NOTIFICATION,
                {"id": notification.id, "alert_id": notification.alert_id, "event": notification.event,
                 "link": f"/notifications/{notification.id}",
                 **tray_event(notification, person, organization, unread)})


def record_event(alert: Alert, kind: str, at: datetime, *, record_id: int | None = None, user_id: int | None = None,
                 detail: str = "") -> None:
    """Write an alert's event now, as a plain row: nothing reads it back as an object, and a pending one would
    make the next query of the transaction flush first. A resolution stays an object: the metrics count it when
    it is flushed (`dashboard.metrics`)."""
    row = {"alert_id": alert.id, "kind": kind, "at": at, "record_id": record_id, "user_id": user_id,
           "detail": detail[:1000]}
    if kind == AlertEventKind.RESOLVED:
        db.session.add(AlertEvent(**row))
    else:
        db.session.execute(sa.insert(AlertEvent.__table__), row)


def refresh_content(alert: Alert, now: datetime) -> None:
    """Recompute the alert's title, text and figures from its affected records, as of `now`."""
    db.session.flush()
    content = describe(alert, now)
    alert.title = _fits(content.title, TITLE_MAX_LENGTH)
    alert.body = content.body
    alert.affected_count = content.details.get("affected_count", alert.affected_count)
    alert.details = {**(alert.details or {}), **content.details, "link": alert_link(alert)}


TITLE_MAX_LENGTH = 300
"""The alert and notification title columns (PostgreSQL refuses longer; long organization names make them)."""


def _fits(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"
