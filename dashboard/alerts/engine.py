"""The alert engine: apply the rules to what changed, and commit what they decide.

Each entry point is one transaction: it takes the organization's lock, reads
the facts (`facts`), applies the pure rules (`rules`), has `writer` open, join,
resolve and notify, and commits; live events and jobs follow the commit.
Evaluation is idempotent: a batch already evaluated is skipped, and the
database's unique indexes back "exactly once" under races.

The statements every evaluation runs are built once, with bind parameters:
building one and its cache key costs more CPU than SQLite takes to run it.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from dashboard.alerts import delivery, facts, followup, quiet, recipients, rules, writer
from dashboard.alerts.writer import Evaluation
from dashboard.extensions import db
from dashboard.live.publish import PLATFORM_CHANNEL, organization_channel, queue_event
from dashboard.sync.errors import CONNECTOR_WIDE, HELD_BACK
from dashboard.models import Alert, AlertRecord, Connector, Organization, SyncAttempt, SyncBatch, SyncRecord, utcnow
from dashboard.vocabulary import (
    CLEARED_STATUSES, WAITING_STATUSES, AlertEventKind, AlertStatus, LiveEvent, NotificationEvent,
)


# Entry points --------------------------------------------------------------------------------------------

def evaluate_batch(batch_id: int, now: datetime | None = None) -> bool:
    """Apply every rule to a committed batch, once (a batch of an archived organization is marked evaluated
    without rules). Returns False if it was evaluated already."""
    now = now or utcnow()
    batch = db.session.get(SyncBatch, batch_id)
    if batch is None:
        db.session.rollback()
        return False
    organization = writer.lock_organization(batch.organization_id)
    db.session.refresh(batch)
    if batch.evaluated_at is not None:
        db.session.rollback()
        return False
    if organization.archived_at is not None:  # an archived organization raises nothing
        batch.evaluated_at = now
        db.session.commit()
        return True
    ev = Evaluation(organization, now)
    batch_facts = facts.batch_facts(batch_id)
    connector = db.session.get(Connector, batch.connector_id)
    if connector is not None:
        _apply_connector(ev, connector, batch_id, batch_facts)
    _apply_consecutive(ev, batch_facts)
    _apply_threshold(ev, batch_facts)
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
    administrator excluded or included records, when the open alerts' figures are refreshed too). An archived
    organization is left as it is: it raises nothing."""
    now = now or utcnow()
    organization = writer.lock_organization(organization_id)
    if organization.archived_at is not None:
        db.session.commit()
        return
    ev = Evaluation(organization, now)
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
    """The periodic scan: every active organization's staleness, due announcements, the follow-ups (ended
    maintenance windows and snoozes, escalation), and the never-evaluated sweep."""
    now = now or utcnow()
    active = sa.select(Organization.id).where(Organization.archived_at.is_(None)).order_by(Organization.id)
    for organization_id in db.session.scalars(active).all():
        check_organization(organization_id, now)
    announce_due(now)
    db.session.commit()
    followup.run_due(now, recount_platform)
    sweep_unevaluated(now)


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


_DUE = (sa.select(Alert).where(Alert.global_due_at.is_not(None), Alert.global_announced_at.is_(None),
                               Alert.global_due_at <= sa.bindparam("now")).order_by(Alert.global_due_at, Alert.id))


def announce_due(now: datetime) -> None:
    """Tell global admins of alerts whose grouping wait has ended. Runs in the caller's transaction."""
    due = db.session.scalars(_DUE, {"now": now}).all()
    if not due:
        return
    platform_settings = writer.lock_platform()
    platform = writer.open_alert(rules.PLATFORM_FINGERPRINT)
    for alert in due:
        db.session.refresh(alert)
        if alert.global_announced_at is not None:
            continue
        decision = rules.global_announcement(alert.rule, alert.status == AlertStatus.OPEN, platform is not None)
        alert.global_announced_at = now
        if decision == "notify":
            writer.record_event(alert, AlertEventKind.ANNOUNCED, now, detail="global administrators")
            gather = delivery.into_platform_summary(now, timedelta(seconds=platform_settings.grouping_wait_seconds)) \
                if delivery.is_single_organization_threshold(alert) else None
            writer.notify(alert, recipients.global_admins(), NotificationEvent.RAISED, now, gather=gather)
        elif decision == "fold":
            writer.record_event(alert, AlertEventKind.FOLDED, now,
                                detail=f"into platform alert {platform.id}")  # type: ignore[union-attr]


# Rules ---------------------------------------------------------------------------------------------------

def _apply_connector(ev: Evaluation, connector: Connector, batch_id: int, batch_facts: list[rules.AttemptFact]
                     ) -> None:
    """Connector-level causes in log order: each raises one alert per connector and cause (a rate limit once it
    has lasted `CONNECTOR_RATE_LIMIT_ALERT_MINUTES`), and its failing records join it; a connector-wide cause
    resolves as soon as the connector answers otherwise (a closed period resolves with its records)."""
    org = ev.organization
    patience = timedelta(minutes=current_app.config["CONNECTOR_RATE_LIMIT_ALERT_MINUTES"])
    causes = {alert.error_code: alert for alert in ev.open_alerts().values()
              if alert.connector_id == connector.id and alert.rule == rules.CONNECTOR}
    if not causes and not any(fact.error_code in HELD_BACK for fact in batch_facts):
        return  # nothing to resolve and nothing to raise: the batch's attempts need not be read
    for attempted_at, record_id, error_code in facts.batch_outcomes(batch_id):
        for cause in [c for c in causes if c in CONNECTOR_WIDE and rules.connector_recovered(c, [error_code])]:
            writer.resolve(ev, causes.pop(cause))
        if error_code not in HELD_BACK:
            continue
        alert = causes.get(error_code)
        if alert is None:
            began = facts.rate_limited_since(connector.id, attempted_at, 4 * patience) \
                if error_code == rules.RATE_LIMITED else None
            if not rules.connector_cause_alerts(error_code, attempted_at - began if began else None, patience):
                continue
            fingerprint = rules.connector_fingerprint(org.id, connector.id, error_code)
            alert = causes[error_code] = ev.open_alert(fingerprint) or writer.raise_alert(
                ev, rules.CONNECTOR, fingerprint, error_code=error_code, connector_id=connector.id)
        writer.join(ev, alert, [record_id])


def _apply_consecutive(ev: Evaluation, batch_facts: list[rules.AttemptFact]) -> None:
    """Crossings grouped by fingerprint in log order: one alert lookup and one join per group. Failures whose
    cause is the connector's are held back (the connector alert speaks for them)."""
    threshold = ev.organization.consecutive_failure_threshold
    groups: dict[str, list[rules.AttemptFact]] = {}
    for fact in batch_facts:
        if not fact.failed or fact.error_code in HELD_BACK or fact.failure_streak < threshold:
            continue
        earlier = facts.earlier_in_streak(fact) if fact.failure_streak > threshold else []
        if rules.first_alertable_crossing(fact, threshold, HELD_BACK, earlier):
            fingerprint = rules.consecutive_fingerprint(ev.organization.id, fact.record_type,
                                                        fact.error_code or "unknown")
            groups.setdefault(fingerprint, []).append(fact)
    for fingerprint, crossings in groups.items():
        first = crossings[0]
        alert = ev.open_alert(fingerprint) or writer.raise_alert(
            ev, rules.CONSECUTIVE, fingerprint, record_type=first.record_type, error_code=first.error_code,
        )
        writer.join(ev, alert, [fact.record_id for fact in crossings])


def _apply_threshold(ev: Evaluation, batch_facts: list[rules.AttemptFact]) -> None:
    failures = [f for f in batch_facts if f.failed]
    if not failures:
        return
    org = ev.organization
    fingerprint = rules.threshold_fingerprint(org.id)
    alert = ev.open_alert(fingerprint)
    if alert is None:
        window = timedelta(hours=org.error_window_hours)
        keys = [f.key for f in failures]
        armed_since = _threshold_armed_since(ev, fingerprint, window, max(keys)[0])
        if armed_since is None:
            return
        keys = [key for key in keys if key[0] > armed_since]
        if not keys:
            return
        crossing = rules.threshold_crossing(facts.failures_around(org.id, keys, org.error_threshold), keys,
                                            org.error_threshold, window)
        if crossing is None:
            return
        alert = writer.raise_alert(ev, rules.ERROR_THRESHOLD, fingerprint, opened_at=crossing[0],
                       error_code=next(f.error_code for f in failures if f.key == crossing))
        writer.join(ev, alert, facts.records_failed_between(org.id, crossing[0] - window, crossing))
        failures = [f for f in failures if f.key > crossing]
    writer.join(ev, alert, [f.record_id for f in failures])


_LAST_RESOLVED = (sa.select(Alert).where(Alert.fingerprint == sa.bindparam("fingerprint"),
                                         Alert.status == AlertStatus.RESOLVED)
                  .order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(1))


def _threshold_armed_since(ev: Evaluation, fingerprint: str, window: timedelta, until: datetime
                           ) -> datetime | None:
    """Since when a crossing may raise the error-threshold alert: always for the organization's first one;
    after a resolution, from the instant the window's failures fell to the re-arm level (None: not yet).

    The instant found (or how far the search has reached) is kept in the resolved alert's details, so each
    search reads only the failures since the last one."""
    last = db.session.scalars(_LAST_RESOLVED, {"fingerprint": fingerprint}).first()
    if last is None or last.resolved_at is None:
        return datetime.min
    rearm = last.details.get("rearm", {})
    if rearm.get("at"):
        return datetime.fromisoformat(rearm["at"])
    since = max(last.resolved_at, datetime.fromisoformat(rearm["checked_until"])) \
        if rearm.get("checked_until") else last.resolved_at
    if until < since:
        return None
    org = ev.organization
    level = quiet.rearm_level(org.error_threshold, org.error_rearm_level)
    at = quiet.rearmed_at(facts.failure_times(org.id, since - window, until), since, until, window, level)
    found = {"at": at.isoformat()} if at else {"checked_until": until.isoformat()}
    last.details = {**last.details, "rearm": found}
    return at


def _apply_stale(ev: Evaluation, connector: Connector) -> None:
    org = ev.organization
    fingerprint = rules.stale_fingerprint(org.id, connector.id)
    alert = ev.open_alert(fingerprint)
    if not connector.enabled:  # disabled or removed: no stale-sync alert (an open one resolves)
        if alert is not None:
            writer.resolve(ev, alert)
        return
    params = {"connector_id": connector.id, "cutoff": rules.stale_cutoff(ev.now, org.stale_after_hours)}
    if alert is None:
        stale_ids = list(db.session.scalars(_STALE, params))
        if not stale_ids:
            return
        alert = writer.raise_alert(ev, rules.STALE, fingerprint, connector_id=connector.id)
        writer.join(ev, alert, stale_ids)
        return
    if connector.enabled:
        writer.join(ev, alert, list(db.session.scalars(_STALE_NOT_JOINED, {**params, "alert_id": alert.id})))


_WAITING = sa.select(SyncRecord.id).where(
    SyncRecord.connector_id == sa.bindparam("connector_id"), SyncRecord.status.in_(WAITING_STATUSES),
    SyncRecord.approved_at < sa.bindparam("cutoff"))
_STALE = _WAITING.order_by(SyncRecord.approved_at)
"""A connector's records waiting since before the cutoff."""
_STALE_NOT_JOINED = _WAITING.where(~sa.select(AlertRecord.record_id).where(
    AlertRecord.alert_id == sa.bindparam("alert_id"), AlertRecord.record_id == SyncRecord.id).exists())
"""Those not yet joined to the connector's stale-sync alert."""


def _resolve_cleared(ev: Evaluation) -> None:
    """Resolve every open alert of the organization whose affected records are all synced or excluded
    (but for connector-wide causes, which resolve when the connector recovers)."""
    for alert in db.session.scalars(_CLEARED, {"organization_id": ev.organization.id}).all():
        writer.resolve(ev, alert)


_CLEARED = sa.select(Alert).where(
    Alert.organization_id == sa.bindparam("organization_id"), Alert.status == AlertStatus.OPEN,
    ~sa.select(AlertRecord.alert_id).join(SyncRecord, SyncRecord.id == AlertRecord.record_id)
    .where(AlertRecord.alert_id == Alert.id, SyncRecord.status.not_in(CLEARED_STATUSES)).exists(),
    ~sa.and_(Alert.rule == rules.CONNECTOR, Alert.error_code.in_(CONNECTOR_WIDE))).order_by(Alert.id)


def _touch_alerts_of_batch(ev: Evaluation, batch_id: int) -> None:
    """Open alerts holding a record of the batch: their figures (kept in details) change with its status."""
    ev.touched.update(db.session.scalars(_ALERTS_OF_BATCH, {"batch_id": batch_id}))


_ALERTS_OF_BATCH = (sa.select(AlertRecord.alert_id.distinct())
                    .join(SyncAttempt, SyncAttempt.record_id == AlertRecord.record_id)
                    .join(Alert, Alert.id == AlertRecord.alert_id)
                    .where(SyncAttempt.batch_id == sa.bindparam("batch_id"), Alert.status == AlertStatus.OPEN))


def _finish(ev: Evaluation) -> None:
    """Refresh touched alerts' text and notify raises, then the platform alert and due announcements."""
    for alert_id in sorted(ev.touched):
        alert = db.session.get(Alert, alert_id)
        if alert is None:
            continue
        writer.refresh_content(alert, ev.now)
        if alert_id in ev.raised:
            writer.announce_raise(alert, ev.now)
        queue_event(organization_channel(ev.organization.id), LiveEvent.ALERT_CHANGED, {"alert_id": alert_id})
    if ev.opened_or_resolved:
        _update_platform(ev.now)
    announce_due(ev.now)


def recount_platform(now: datetime) -> None:
    """After alerts a maintenance window held back start to count: the platform incident, and its announcement
    when the grouping wait is already over. Runs in the caller's transaction (the organization's lock held)."""
    _update_platform(now)
    announce_due(now)


def _update_platform(now: datetime) -> None:
    """Open, update or resolve the platform incident from the organizations with open alerts; alerts a
    maintenance window holds back do not count (the window's end clears their mark)."""
    settings = writer.lock_platform()
    platform = writer.open_alert(rules.PLATFORM_FINGERPRINT)
    rows = db.session.execute(_ORGANIZATIONS_ALERTING).all()
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
        writer.record_event(platform, AlertEventKind.RAISED, now, detail=_names(organizations))
    elif action == "update":
        assert platform is not None
        if platform.details.get("organizations") != list(organizations.values()):
            platform.details = {"organizations": list(organizations.values())}
            platform.last_seen_at = now
            writer.record_event(platform, AlertEventKind.UPDATED, now, detail=_names(organizations))
    elif action == "resolve":
        assert platform is not None
        writer.close(platform, now)
    if platform is not None:
        writer.refresh_content(platform, now)
        queue_event(PLATFORM_CHANNEL, LiveEvent.PLATFORM_CHANGED, {"alert_id": platform.id})


_ORGANIZATIONS_ALERTING = (sa.select(Organization.id, Organization.slug, Organization.name, Alert.rule)
                           .join(Alert, Alert.organization_id == Organization.id)
                           .where(Alert.status == AlertStatus.OPEN, Alert.muted_by_window_id.is_(None))
                           .distinct().order_by(Organization.name))
"""The organizations with open alerts that count (none a maintenance window holds back), and their rules."""


def _names(organizations: dict[int, dict]) -> str:
    return ", ".join(o["name"] for o in organizations.values())
