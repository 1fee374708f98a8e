"""The alert engine: load what the rules need, apply them, write alerts and notifications.

The one place that opens, joins and resolves alerts. Every change happens in
the caller's transaction under the organization's lock (a row lock on
PostgreSQL, BEGIN IMMEDIATE on SQLite), and the database's unique indexes back
the "exactly once" that the lock already gives. Reads are bounded by the
batch, never by an organization's history.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from dashboard.alerts import recipients, rules
from dashboard.alerts.content import alert_link, describe
from dashboard.extensions import db
from dashboard.live.publish import PLATFORM_CHANNEL, organization_channel, queue_event, user_channel
from dashboard.models import (
    Alert,
    AlertEvent,
    AlertRecord,
    Connector,
    Notification,
    Organization,
    PlatformSettings,
    SyncAttempt,
    SyncBatch,
    SyncRecord,
    utcnow,
)
from dashboard.vocabulary import (
    CLEARED_STATUSES, WAITING_STATUSES, AlertEventKind, AlertStatus, AttemptOutcome, LiveEvent, NotificationEvent,
)

log = logging.getLogger(__name__)


@dataclass
class _Evaluation:
    """What one evaluation changed, to decide the platform alert and the live pushes."""

    organization: Organization
    now: datetime
    opened_or_resolved: bool = False
    touched: set[int] = field(default_factory=set)
    raised: set[int] = field(default_factory=set)
    """Alerts raised in this evaluation: notified once their text is known, their first records not "joined"."""


# Entry points --------------------------------------------------------------------------------------------

def evaluate_batch(batch_id: int, now: datetime | None = None) -> bool:
    """Apply every rule to a committed batch, once. Returns False if it was evaluated already."""
    now = now or utcnow()
    batch = db.session.get(SyncBatch, batch_id)
    if batch is None:
        db.session.rollback()
        return False
    organization = _lock_organization(batch.organization_id)
    db.session.refresh(batch)
    if batch.evaluated_at is not None:
        db.session.rollback()
        return False
    ev = _Evaluation(organization, now)
    facts = _batch_facts(batch_id)
    _apply_consecutive(ev, facts)
    _apply_threshold(ev, facts)
    connector = db.session.get(Connector, batch.connector_id)
    if connector is not None:
        _apply_stale(ev, connector)
    _resolve_cleared(ev)
    _touch_alerts_of_batch(ev, batch_id)
    batch.evaluated_at = now
    _finish(ev)
    queue_event(organization_channel(organization.id), LiveEvent.RECORDS_CHANGED, {"batch_id": batch_id})
    db.session.commit()
    return True


def check_organization(organization_id: int, now: datetime | None = None, refresh_figures: bool = False) -> None:
    """Re-check an organization's time-driven rule and open alerts (every minute, or after an
    administrator excluded or included records, when the open alerts' figures are refreshed too)."""
    now = now or utcnow()
    ev = _Evaluation(_lock_organization(organization_id), now)
    if refresh_figures:
        ev.touched.update(db.session.scalars(
            sa.select(Alert.id).where(Alert.organization_id == organization_id, Alert.status == AlertStatus.OPEN)))
    connectors = db.session.scalars(
        sa.select(Connector).where(Connector.organization_id == organization_id).order_by(Connector.id)
    ).all()
    for connector in connectors:
        _apply_stale(ev, connector)
    _resolve_cleared(ev)
    _finish(ev)
    db.session.commit()


def scan(now: datetime | None = None) -> None:
    """The periodic scan: every organization's staleness, due announcements, and the never-evaluated sweep."""
    now = now or utcnow()
    for organization_id in db.session.scalars(sa.select(Organization.id).order_by(Organization.id)).all():
        check_organization(organization_id, now)
    announce_due(now)
    db.session.commit()
    sweep_unevaluated(now)
    _record_scan(now)


LAST_SCAN_KEY = "dashboard:last-scan"


def _record_scan(now: datetime) -> None:
    """Leave the scan's time in Redis for the platform page's health panel."""
    from dashboard.extensions import redis_ext

    try:
        redis_ext.client.set(LAST_SCAN_KEY, now.isoformat())
    except Exception:  # noqa: BLE001 - only the health panel reads it
        log.warning("could not record the scan time in Redis")


def sweep_unevaluated(now: datetime | None = None, older_than: timedelta = timedelta(seconds=30)) -> list[int]:
    """Evaluate committed batches that no job evaluated (Redis down, worker killed); returns their ids."""
    now = now or utcnow()
    ids = list(db.session.scalars(
        sa.select(SyncBatch.id).where(SyncBatch.evaluated_at.is_(None), SyncBatch.received_at <= now - older_than)
        .order_by(SyncBatch.received_at, SyncBatch.id).limit(500)
    ))
    db.session.rollback()
    return [batch_id for batch_id in ids if evaluate_batch(batch_id, now)]


def next_announcement() -> datetime | None:
    """When the earliest pending grouping wait ends, so a job can announce it on time."""
    return db.session.scalar(
        sa.select(sa.func.min(Alert.global_due_at))
        .where(Alert.global_due_at.is_not(None), Alert.global_announced_at.is_(None))
    )


def announce(now: datetime | None = None) -> None:
    """Announce what is due to global admins, in its own transaction."""
    now = now or utcnow()
    announce_due(now)
    db.session.commit()


def announce_due(now: datetime) -> None:
    """Tell global admins of alerts whose grouping wait has ended. Runs in the caller's transaction."""
    due = db.session.scalars(
        sa.select(Alert).where(Alert.global_due_at.is_not(None), Alert.global_announced_at.is_(None),
                               Alert.global_due_at <= now).order_by(Alert.global_due_at, Alert.id)
    ).all()
    if not due:
        return
    _lock_platform()
    platform = _open_alert(rules.PLATFORM_FINGERPRINT)
    for alert in due:
        db.session.refresh(alert)
        if alert.global_announced_at is not None:
            continue
        decision = rules.global_announcement(alert.rule, alert.status == AlertStatus.OPEN, platform is not None)
        alert.global_announced_at = now
        if decision == "notify":
            _event(alert, AlertEventKind.ANNOUNCED, now, detail="global administrators")
            _notify(alert, recipients.global_admins(), NotificationEvent.RAISED, now)
        elif decision == "fold":
            _event(alert, AlertEventKind.FOLDED, now, detail=f"into platform alert {platform.id}")  # type: ignore[union-attr]


# Rules ---------------------------------------------------------------------------------------------------

def _apply_consecutive(ev: _Evaluation, facts: list[rules.AttemptFact]) -> None:
    """Crossings grouped by fingerprint in log order: one alert lookup and one join per group."""
    threshold = ev.organization.consecutive_failure_threshold
    groups: dict[str, list[rules.AttemptFact]] = {}
    for fact in facts:
        if fact.failed and rules.crossed_consecutive(fact.failure_streak, threshold):
            fingerprint = rules.consecutive_fingerprint(ev.organization.id, fact.record_type,
                                                        fact.error_code or "unknown")
            groups.setdefault(fingerprint, []).append(fact)
    for fingerprint, crossings in groups.items():
        first = crossings[0]
        alert = _open_alert(fingerprint) or _raise(
            ev, rules.CONSECUTIVE, fingerprint, record_type=first.record_type, error_code=first.error_code,
        )
        _join(ev, alert, [fact.record_id for fact in crossings])


def _apply_threshold(ev: _Evaluation, facts: list[rules.AttemptFact]) -> None:
    failures = [f for f in facts if f.failed]
    if not failures:
        return
    org = ev.organization
    fingerprint = rules.threshold_fingerprint(org.id)
    alert = _open_alert(fingerprint)
    if alert is None:
        window = timedelta(hours=org.error_window_hours)
        keys = [f.key for f in failures]
        crossing = rules.threshold_crossing(_failures_around(org.id, keys, org.error_threshold), keys,
                                            org.error_threshold, window)
        if crossing is None:
            return
        alert = _raise(ev, rules.ERROR_THRESHOLD, fingerprint, opened_at=crossing[0],
                       error_code=next(f.error_code for f in failures if f.key == crossing))
        _join(ev, alert, _records_failed_between(org.id, crossing[0] - window, crossing))
        failures = [f for f in failures if f.key > crossing]
    _join(ev, alert, [f.record_id for f in failures])


def _apply_stale(ev: _Evaluation, connector: Connector) -> None:
    org = ev.organization
    fingerprint = rules.stale_fingerprint(org.id, connector.id)
    alert = _open_alert(fingerprint)
    if not connector.enabled and alert is None:
        return
    cutoff = rules.stale_cutoff(ev.now, org.stale_after_hours)
    waiting = sa.select(SyncRecord.id).where(
        SyncRecord.connector_id == connector.id, SyncRecord.status.in_(WAITING_STATUSES),
        SyncRecord.approved_at < cutoff,
    )
    if alert is None:
        stale_ids = list(db.session.scalars(waiting.order_by(SyncRecord.approved_at)))
        if not stale_ids:
            return
        alert = _raise(ev, rules.STALE, fingerprint, connector_id=connector.id)
        _join(ev, alert, stale_ids)
        return
    if connector.enabled:
        joined = sa.select(AlertRecord.record_id).where(AlertRecord.alert_id == alert.id,
                                                        AlertRecord.record_id == SyncRecord.id)
        _join(ev, alert, list(db.session.scalars(waiting.where(~joined.exists()))))


def _resolve_cleared(ev: _Evaluation) -> None:
    """Resolve every open alert of the organization whose affected records are all synced or excluded."""
    waiting = (
        sa.select(AlertRecord.alert_id)
        .join(SyncRecord, SyncRecord.id == AlertRecord.record_id)
        .where(AlertRecord.alert_id == Alert.id, SyncRecord.status.not_in(CLEARED_STATUSES))
    )
    cleared = db.session.scalars(
        sa.select(Alert).where(Alert.organization_id == ev.organization.id, Alert.status == AlertStatus.OPEN,
                               ~waiting.exists()).order_by(Alert.id)
    ).all()
    for alert in cleared:
        _resolve(ev, alert)


def _touch_alerts_of_batch(ev: _Evaluation, batch_id: int) -> None:
    """Open alerts holding a record of the batch: their figures (kept in details) change with its status."""
    ev.touched.update(db.session.scalars(
        sa.select(AlertRecord.alert_id.distinct())
        .join(SyncAttempt, SyncAttempt.record_id == AlertRecord.record_id)
        .join(Alert, Alert.id == AlertRecord.alert_id)
        .where(SyncAttempt.batch_id == batch_id, Alert.status == AlertStatus.OPEN)
    ))


def _finish(ev: _Evaluation) -> None:
    """Refresh touched alerts' text and notify raises, then the platform alert and due announcements."""
    for alert_id in sorted(ev.touched):
        alert = db.session.get(Alert, alert_id)
        if alert is None:
            continue
        _refresh_content(alert)
        if alert_id in ev.raised:
            _notify(alert, recipients.for_raise(alert), NotificationEvent.RAISED, ev.now)
        queue_event(organization_channel(ev.organization.id), LiveEvent.ALERT_CHANGED, {"alert_id": alert_id})
    if ev.opened_or_resolved:
        _update_platform(ev.now)
    announce_due(ev.now)


def _update_platform(now: datetime) -> None:
    settings = _lock_platform()
    platform = _open_alert(rules.PLATFORM_FINGERPRINT)
    rows = db.session.execute(
        sa.select(Organization.id, Organization.slug, Organization.name, Alert.rule)
        .join(Alert, Alert.organization_id == Organization.id)
        .where(Alert.status == AlertStatus.OPEN).distinct().order_by(Organization.name)
    ).all()
    organizations: dict[int, dict] = {}
    for org_id, slug, name, rule in rows:
        entry = organizations.setdefault(org_id, {"id": org_id, "slug": slug, "name": name, "rules": []})
        if rule not in entry["rules"]:
            entry["rules"].append(rule)
    action = rules.platform_action(len(organizations), settings.incident_min_organizations, platform is not None)
    if action == "open":
        platform = Alert(organization_id=None, rule=rules.PLATFORM, fingerprint=rules.PLATFORM_FINGERPRINT,
                         status=AlertStatus.OPEN, title="", opened_at=now, last_seen_at=now,
                         details={"organizations": list(organizations.values())},
                         global_due_at=now + timedelta(seconds=settings.grouping_wait_seconds))
        db.session.add(platform)
        db.session.flush()
        _event(platform, AlertEventKind.RAISED, now, detail=", ".join(o["name"] for o in organizations.values()))
    elif action == "update":
        assert platform is not None
        if platform.details.get("organizations") != list(organizations.values()):
            platform.details = {"organizations": list(organizations.values())}
            platform.last_seen_at = now
            _event(platform, AlertEventKind.UPDATED, now, detail=", ".join(o["name"] for o in organizations.values()))
    elif action == "resolve":
        assert platform is not None
        _close(platform, now)
    if platform is not None:
        _refresh_content(platform)
        queue_event(PLATFORM_CHANNEL, LiveEvent.PLATFORM_CHANGED, {"alert_id": platform.id})


# Writing -------------------------------------------------------------------------------------------------

def _raise(ev: _Evaluation, rule: str, fingerprint: str, *, opened_at: datetime | None = None,
           record_type: str | None = None, error_code: str | None = None, connector_id: int | None = None) -> Alert:
    org = ev.organization
    alert = Alert(organization_id=org.id, rule=rule, fingerprint=fingerprint, status=AlertStatus.OPEN, title="",
                  record_type=record_type, error_code=error_code, connector_id=connector_id,
                  opened_at=ev.now, last_seen_at=ev.now, details={})
    if rule == rules.ERROR_THRESHOLD:
        wait = _lock_platform().grouping_wait_seconds
        alert.global_due_at = ev.now + timedelta(seconds=wait)
    db.session.add(alert)
    db.session.flush()
    ev.opened_or_resolved = True
    ev.touched.add(alert.id)
    ev.raised.add(alert.id)
    _event(alert, AlertEventKind.RAISED, ev.now, detail=f"crossing at {opened_at:%Y-%m-%d %H:%M:%S}" if opened_at else "")
    return alert


def _join(ev: _Evaluation, alert: Alert, record_ids: list[int]) -> None:
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


def _resolve(ev: _Evaluation, alert: Alert) -> None:
    if alert.id in ev.raised:  # raised and cleared in one evaluation: tell of the raise before the resolution
        _refresh_content(alert)
        _notify(alert, recipients.for_raise(alert), NotificationEvent.RAISED, ev.now)
    _close(alert, ev.now)
    ev.opened_or_resolved = True
    ev.touched.add(alert.id)


def _close(alert: Alert, now: datetime) -> None:
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    if alert.global_announced_at is None:
        alert.global_due_at = None  # resolved within the grouping wait: never announced
    _event(alert, AlertEventKind.RESOLVED, now)
    _refresh_content(alert)
    _notify(alert, recipients.for_resolution(alert), NotificationEvent.RESOLVED, now)


def _notify(alert: Alert, user_ids: list[int], event: str, now: datetime) -> None:
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
        _event(alert, AlertEventKind.NOTIFIED, now, user_id=user_id, detail=event)
        queue_event(user_channel(user_id), LiveEvent.NOTIFICATION,
                    {"id": notification.id, "alert_id": alert.id, "event": event, "title": alert.title,
                     "link": f"/notifications/{notification.id}"})


def _event(alert: Alert, kind: str, at: datetime, *, record_id: int | None = None, user_id: int | None = None,
           detail: str = "") -> None:
    db.session.add(AlertEvent(alert_id=alert.id, kind=kind, at=at, record_id=record_id, user_id=user_id,
                              detail=detail[:1000]))


def _refresh_content(alert: Alert) -> None:
    """Recompute the alert's title, text and figures from its affected records."""
    db.session.flush()
    content = describe(alert)
    alert.title = content.title
    alert.body = content.body
    alert.affected_count = content.details.get("affected_count", alert.affected_count)
    alert.details = {**(alert.details or {}), **content.details, "link": alert_link(alert)}


# Reading -------------------------------------------------------------------------------------------------

def _lock_organization(organization_id: int) -> Organization:
    """Serialize evaluations of one organization (FOR UPDATE on PostgreSQL; SQLite writers are serial)."""
    organization = db.session.scalars(
        sa.select(Organization).where(Organization.id == organization_id).with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return organization


def _lock_platform() -> PlatformSettings:
    settings = db.session.scalars(
        sa.select(PlatformSettings).where(PlatformSettings.id == 1).with_for_update()
    ).one_or_none()
    if settings is None:
        settings = PlatformSettings(id=1, incident_min_organizations=2, grouping_wait_seconds=60)
        db.session.add(settings)
        db.session.flush()
    return settings


def _open_alert(fingerprint: str) -> Alert | None:
    return db.session.scalars(
        sa.select(Alert).where(Alert.fingerprint == fingerprint, Alert.status == AlertStatus.OPEN)
    ).one_or_none()


def _batch_facts(batch_id: int) -> list[rules.AttemptFact]:
    """The batch's failed attempts in log order, late ones left out: the only attempts the rules read."""
    rows = db.session.execute(
        sa.select(SyncAttempt.id, SyncAttempt.record_id, SyncRecord.record_type, SyncAttempt.attempted_at,
                  SyncAttempt.outcome, SyncAttempt.error_code, SyncAttempt.failure_streak)
        .join(SyncRecord, SyncRecord.id == SyncAttempt.record_id)
        .where(SyncAttempt.batch_id == batch_id, SyncAttempt.outcome == AttemptOutcome.FAILURE, SyncAttempt.late.is_(False))
        .order_by(SyncAttempt.attempted_at, SyncAttempt.id)
    ).all()
    return [rules.AttemptFact(r.id, r.record_id, r.record_type, r.attempted_at, r.outcome == AttemptOutcome.FAILURE,
                              r.error_code, r.failure_streak) for r in rows]


def _failures_around(organization_id: int, keys: list[tuple[datetime, int]], threshold: int
                     ) -> list[tuple[datetime, int]]:
    """The organization's failures from the (threshold + 1)th before the first key to the last key.

    Two index range reads on (organization_id, attempted_at, id) WHERE failure:
    at most threshold + 1 rows before, and the failures between the batch's
    first and last, whatever the size of the history.
    """
    first, last = min(keys), max(keys)
    failure = sa.and_(SyncAttempt.organization_id == organization_id, SyncAttempt.outcome == AttemptOutcome.FAILURE)
    before = db.session.execute(
        sa.select(SyncAttempt.attempted_at, SyncAttempt.id).where(
            failure, sa.or_(SyncAttempt.attempted_at < first[0],
                            sa.and_(SyncAttempt.attempted_at == first[0], SyncAttempt.id < first[1])))
        .order_by(SyncAttempt.attempted_at.desc(), SyncAttempt.id.desc()).limit(threshold + 1)
    ).all()
    between = db.session.execute(
        sa.select(SyncAttempt.attempted_at, SyncAttempt.id).where(
            failure, SyncAttempt.attempted_at >= first[0], SyncAttempt.attempted_at <= last[0])
        .order_by(SyncAttempt.attempted_at, SyncAttempt.id)
    ).all()
    merged = {(t, i) for t, i in before} | {(t, i) for t, i in between if (t, i) >= first}
    return sorted(merged)


def _records_failed_between(organization_id: int, start: datetime, end: tuple[datetime, int]) -> list[int]:
    """Records with a failed attempt in the window (start, end]: the affected set of a new error-threshold alert."""
    return list(db.session.scalars(
        sa.select(SyncAttempt.record_id).where(
            SyncAttempt.organization_id == organization_id, SyncAttempt.outcome == AttemptOutcome.FAILURE,
            SyncAttempt.attempted_at > start,
            sa.or_(SyncAttempt.attempted_at < end[0],
                   sa.and_(SyncAttempt.attempted_at == end[0], SyncAttempt.id <= end[1])))
        .distinct()
    ))

