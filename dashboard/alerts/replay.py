"""Replay: the alert engine over the stored sync log on a virtual clock, writing nothing real.

`replay` copies the organizations (with any setting overrides), their admins,
the global admins, the platform settings, the connectors and the records as
they were at the start (`replay_world`) into a scratch app on an in-memory
SQLite database, with live events off and no Redis. It then feeds the period's
attempts, batch by batch in the order of each batch's latest attempt, through
the sync-log writer the ingestion uses, and evaluates each batch with the
engine's clock at that attempt. Between batches it runs what time drives, at
the instant it comes due: a stale deadline (a record still waiting
`stale_after_hours` after its approval; the live scan runs every minute, so at
the next minute), a grouping wait's end (`engine.next_announcement()`), an
administrator's exclusion or inclusion of a record, and the periodic scan at
the start and every hour (of the organizations with an open alert: one without
has nothing to re-check but its stale deadlines). The scratch database's alerts
and notifications are the report.

The replay starts with no alert open or remembered: an alert open at the start
is raised again when its rule fires in the period, and flapping and re-arming
count only the period's alerts. Connectors keep today's enabled switch. An
attempt that was late when it arrived changed nothing live and is left out.
The clock stops at now.
"""
from __future__ import annotations

import contextvars
import heapq
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Iterable, Mapping

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.engine import Connection
from flask_babel import gettext as _
from flask_babel import ngettext

from dashboard.alerts import engine, followup, rules
from dashboard.alerts.replay_world import Action, Attempt, World, copy_world, read_world
from dashboard.database import read_only_from_now
from dashboard.extensions import db
from dashboard.models import Alert, Connector, Notification, Organization, SyncRecord, User, utcnow
from dashboard.sync.log import Outcome, record_batch
from dashboard.vocabulary import WAITING_STATUSES, AlertStatus, NotificationEvent, RecordStatus


class ReplayError(ValueError):
    """What a replay was asked cannot be done (unknown setting or organization, bad value, empty period);
    the message says which, for the person who asked."""


@dataclass(frozen=True)
class Setting:
    key: str
    column: str
    minimum: int
    platform: bool = False


SETTINGS = {s.key: s for s in (
    Setting("consecutive", "consecutive_failure_threshold", 1),
    Setting("threshold", "error_threshold", 1),
    Setting("window", "error_window_hours", 1),
    Setting("stale", "stale_after_hours", 1),
    Setting("rearm", "error_rearm_level", 0),
    Setting("budget", "daily_notification_budget", 1),
    Setting("grouping_wait", "grouping_wait_seconds", 0, platform=True),
    Setting("incident_min", "incident_min_organizations", 2, platform=True),
)}
"""The settings a replay may change: `--set key=value` names the key; the column is the organization's (or
the platform's) setting it overrides."""
SCAN_INTERVAL = timedelta(hours=1)
STALE_CHECK_GRANULARITY = timedelta(minutes=1)
"""The live scan's period: a stale deadline is noticed at the next whole minute after it."""


def parse_settings(pairs: Iterable[str]) -> dict[str, int]:
    """`key=value` pairs (the command line's `--set`) as settings; ReplayError names a malformed one."""
    settings: dict[str, int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise ReplayError(_("Write each setting as key=value, not %(pair)r.", pair=pair))
        try:
            settings[key] = int(value.strip())
        except ValueError:
            raise ReplayError(_("The setting %(key)s needs a whole number, not %(value)r.",
                                key=key, value=value.strip())) from None
    return check_settings(settings)


def check_settings(settings: Mapping[str, int]) -> dict[str, int]:
    """The settings if every key is known and every value in range; ReplayError names the first that is not."""
    for key, value in settings.items():
        setting = SETTINGS.get(key)
        if setting is None:
            raise ReplayError(_("Unknown setting %(key)r; the settings are: %(keys)s.",
                                key=key, keys=", ".join(SETTINGS)))
        if isinstance(value, bool) or not isinstance(value, int) or value < setting.minimum:
            raise ReplayError(_("The setting %(key)s must be a whole number of at least %(minimum)d, not %(value)r.",
                                key=key, minimum=setting.minimum, value=value))
    return dict(settings)


# The report ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReplayedAlert:
    organization: str | None
    """The organization's slug; None for a platform alert."""
    rule: str
    title: str
    """As it was raised (as its first raise notification said it)."""
    opened_at: datetime
    resolved_at: datetime | None
    flapping: bool


@dataclass(frozen=True)
class ReplayedNotification:
    user: str
    """The user's email."""
    is_global_admin: bool
    organization: str | None
    event: str
    title: str
    created_at: datetime
    announced: bool
    """False when it was gathered into another notification (a summary, or a flapping alert's)."""


@dataclass
class ReplayReport:
    """What the engine would have made over the period; days are UTC days."""

    organizations: list[str]
    start: datetime
    end: datetime
    settings: dict[str, int]
    alerts: list[ReplayedAlert] = field(default_factory=list)
    notifications: list[ReplayedNotification] = field(default_factory=list)
    attempts: int = 0
    seconds: float = 0.0

    def per_admin_day(self) -> dict[tuple[str, date], int]:
        """Announced notifications per user (email) and UTC day."""
        counts: Counter[tuple[str, date]] = Counter(
            (n.user, n.created_at.date()) for n in self.notifications if n.announced)
        return dict(sorted(counts.items()))

    def global_per_day(self) -> dict[date, int]:
        """Per UTC day, the most announced notifications any one global admin got."""
        counts: Counter[tuple[str, date]] = Counter(
            (n.user, n.created_at.date()) for n in self.notifications if n.announced and n.is_global_admin)
        most: dict[date, int] = {}
        for (_user, day), count in counts.items():
            most[day] = max(most.get(day, 0), count)
        return dict(sorted(most.items()))

    def format(self) -> str:
        """Per day: the alerts raised and resolved, and per person the notifications announced and gathered."""
        lines = [_("Replay of %(orgs)s from %(start)s to %(end)s (UTC): %(attempts)s attempts in %(seconds).1f s.",
                   orgs=", ".join(self.organizations), start=f"{self.start:%Y-%m-%d %H:%M}",
                   end=f"{self.end:%Y-%m-%d %H:%M}", attempts=f"{self.attempts:,}", seconds=self.seconds)]
        if self.settings:
            lines.append(_("Settings changed: %(settings)s.",
                           settings=", ".join(f"{k}={v}" for k, v in self.settings.items())))
        raised: dict[date, list[ReplayedAlert]] = defaultdict(list)
        resolved: dict[date, list[ReplayedAlert]] = defaultdict(list)
        for alert in self.alerts:
            raised[alert.opened_at.date()].append(alert)
            if alert.resolved_at is not None:
                resolved[alert.resolved_at.date()].append(alert)
        told: dict[date, dict[tuple[str, bool], list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        for n in self.notifications:
            told[n.created_at.date()][(n.user, n.is_global_admin)][0 if n.announced else 1] += 1
        days = sorted(set(raised) | set(resolved) | set(told))
        if not days:
            lines.append(_("No alert was raised and nobody was notified."))
        for day in days:
            lines.append("")
            lines.append(day.isoformat())
            for alert in raised.get(day, []):
                lines.append("  " + _("raised %(time)s: %(title)s%(flapping)s", time=f"{alert.opened_at:%H:%M}",
                                      title=alert.title, flapping=_(" (flapping)") if alert.flapping else ""))
            for alert in resolved.get(day, []):
                lines.append("  " + _("resolved %(time)s: %(title)s", time=f"{alert.resolved_at:%H:%M}",
                                      title=alert.title))
            for (user, is_global), (announced, gathered) in sorted(told.get(day, {}).items()):
                who = _("%(user)s (global admin)", user=user) if is_global else user
                lines.append("  " + _("%(who)s: %(announced)s, %(gathered)s", who=who,
                                      announced=ngettext("%(num)d notification announced",
                                                         "%(num)d notifications announced", announced),
                                      gathered=ngettext("%(num)d gathered", "%(num)d gathered", gathered)))
        per_admin = self.per_admin_day()
        lines += ["", _("Alerts: %(raised)d raised, %(resolved)d resolved. Notifications: %(announced)d announced, "
                        "%(gathered)d gathered. Most announced to one person in one day: %(most)d; to a global "
                        "admin: %(most_global)d.",
                        raised=len(self.alerts), resolved=sum(1 for a in self.alerts if a.resolved_at),
                        announced=sum(1 for n in self.notifications if n.announced),
                        gathered=sum(1 for n in self.notifications if not n.announced),
                        most=max(per_admin.values(), default=0),
                        most_global=max(self.global_per_day().values(), default=0))]
        return "\n".join(lines)


# Replaying -----------------------------------------------------------------------------------------------

def replay(organizations: list[str] | None, start: datetime, end: datetime,
           settings: Mapping[str, int] | None = None) -> ReplayReport:
    """Run the alert engine over the log of [start, end) (naive UTC; an end after now is now) for the
    organizations with these slugs (None: all of them, as global admins hear them together), with `settings`
    overriding theirs and the platform's. Reads the real database, writes nothing to it, publishes and enqueues
    nothing."""
    began = time.perf_counter()
    overrides = check_settings(settings or {})
    if start >= end:
        raise ReplayError(_("The period to replay must end after it starts."))
    end = min(end, utcnow())  # the log ends now: a replay does not run the clock into the future
    if start >= end:
        raise ReplayError(_("The period to replay starts in the future."))
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with db.engine.connect() as source:  # the caller's session and its transaction are left alone
        organization_ids, slugs = _organizations(source, organizations)
        _check_rearm(source, organization_ids, overrides)
        world = read_world(
            source, organization_ids, start, end,
            {SETTINGS[k].column: v for k, v in overrides.items() if not SETTINGS[k].platform},
            {SETTINGS[k].column: v for k, v in overrides.items() if SETTINGS[k].platform},
            timedelta(minutes=app.config["CONNECTOR_RATE_LIMIT_ALERT_MINUTES"]), app.config["SYNC_MAX_AUTO_ATTEMPTS"])
    report = ReplayReport(organizations=slugs, start=start, end=end, settings=overrides, attempts=len(world.period))
    # In a context of its own: the caller may be a writer (a job, a form's request), the scratch database is not.
    contextvars.copy_context().run(_replay_in_scratch, app, world, report)
    report.seconds = time.perf_counter() - began
    return report


def _replay_in_scratch(app: Flask, world: World, report: ReplayReport) -> None:
    read_only_from_now()  # the scratch database has one user: no BEGIN IMMEDIATE, no write lock to queue for
    with scratch_app(app).app_context():
        try:
            db.create_all()
            copy_world(world)
            _Run(world, report.start, report.end, app.config["SYNC_MAX_AUTO_ATTEMPTS"]).run()
            report.alerts, report.notifications = _collect()
        finally:
            db.session.remove()
            db.engine.dispose()


def scratch_app(app: Flask) -> Flask:
    """The app's configuration on an empty in-memory SQLite database, live events off, and no Redis: a
    replay's engine cannot publish, enqueue or touch the real database."""
    from dashboard import create_app

    return create_app({
        **app.config,
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        "SQLALCHEMY_BINDS": {},
        "LIVE_EVENTS": False,
        "REDIS_URL": "unix:///nonexistent/replay-has-no-redis.sock",
        "RATELIMIT_STORAGE_URI": "memory://",
    })


def _organizations(source: Connection, slugs: list[str] | None) -> tuple[list[int], list[str]]:
    query = sa.select(Organization.id, Organization.slug).order_by(Organization.slug)
    if slugs is not None:
        query = query.where(Organization.slug.in_(slugs))
    rows = source.execute(query).all()
    unknown = sorted(set(slugs or []) - {slug for _id, slug in rows})
    if unknown:
        raise ReplayError(ngettext("No organization with slug %(slugs)s.", "No organizations with slugs %(slugs)s.",
                                   len(unknown), slugs=", ".join(repr(s) for s in unknown)))
    if not rows:
        raise ReplayError(_("There is no organization to replay."))
    return [r.id for r in rows], [r.slug for r in rows]


def _check_rearm(source: Connection, organization_ids: list[int], overrides: Mapping[str, int]) -> None:
    """The re-arm level must stay below the error threshold, for every organization replayed."""
    rows = source.execute(sa.select(Organization.slug, Organization.error_threshold, Organization.error_rearm_level)
                          .where(Organization.id.in_(organization_ids))).all()
    for slug, threshold, rearm in rows:
        threshold, rearm = overrides.get("threshold", threshold), overrides.get("rearm", rearm)
        if rearm is not None and rearm >= threshold:
            raise ReplayError(_("The setting rearm (%(rearm)d) must be below the error threshold (%(threshold)d "
                                "for %(org)s).", rearm=rearm, threshold=threshold, org=slug))


class _Run:
    """The virtual clock: batches and timed checks, in time order, against the scratch database."""

    def __init__(self, world: World, start: datetime, end: datetime, max_auto_attempts: int) -> None:
        self.start, self.end = start, end
        self.max_auto_attempts = max_auto_attempts
        self.batches = _batches(world.period)
        self.actions = list(world.actions)
        self.status = world.statuses_at_start()
        self.newest: dict[int, datetime] = {}
        for attempt in world.lead_in:
            if not attempt.late:
                self.newest[attempt.record_id] = attempt.attempted_at
        stale_hours = {o["id"]: o["stale_after_hours"] for o in world.organizations}
        enabled = {c["id"]: c["enabled"] for c in world.connectors}
        self.deadlines: dict[datetime, list[tuple[int, int, int]]] = defaultdict(list)
        for record in world.records:
            due = record["approved_at"] + timedelta(hours=stale_hours[record["organization_id"]])
            if enabled[record["connector_id"]] and start <= due < end:
                noticed = _floor(due, STALE_CHECK_GRANULARITY) + STALE_CHECK_GRANULARITY
                self.deadlines[noticed].append((record["organization_id"], record["connector_id"], record["id"]))
        self.scans = set(_hours(start, end))
        self.timers = sorted(self.scans | set(self.deadlines))  # a sorted list is a heap

    def run(self) -> None:
        """Whatever comes first, until the end; at one instant an administrator's action goes first, then the
        timers (0, 1), a due announcement (2), and last the batch (3)."""
        b = 0
        clock = self.start
        announcement = None
        while True:
            candidates = []
            if b < len(self.batches):
                candidates.append((self.batches[b][0], 3))
            if self.timers:
                candidates.append((self.timers[0], 1))
            if self.actions:
                candidates.append((self.actions[0].at, 0))
            if announcement is not None and announcement < self.end:
                candidates.append((max(announcement, clock), 2))
            if not candidates:
                return
            at, kind = min(candidates)
            if at >= self.end:
                return
            clock = at
            if kind == 1:
                if not self._timer(heapq.heappop(self.timers)):
                    continue  # nothing ran, so no announcement came due
            elif kind == 0:
                self._act(self.actions.pop(0))
            elif kind == 2:
                engine.announce(at)
            else:
                self._evaluate(*self.batches[b])
                b += 1
            announcement = engine.next_announcement()
            db.session.rollback()

    def _timer(self, at: datetime) -> bool:
        """The hourly scan, or the stale check of records whose deadline passed; False if nothing needed to run."""
        if at in self.scans:
            self.scans.discard(at)
            self._scan(at)
            return True
        checked: set[int] = set()
        for organization_id, connector_id, record_id in self.deadlines.pop(at, []):
            if organization_id in checked or self.status.get(record_id) not in WAITING_STATUSES:
                continue
            if _open(rules.stale_fingerprint(organization_id, connector_id)):
                continue  # its records join at the connector's next evaluation or scan, before anything resolves
            engine.check_organization(organization_id, at)
            checked.add(organization_id)
        return bool(checked)

    def _scan(self, at: datetime) -> None:
        """The periodic scan: at the start `engine.scan` (records already waiting too long go stale then), later
        where it can change something: the organizations with an open alert (one without can only raise a stale
        alert, at a deadline this clock keeps), and due announcements."""
        if at == self.start:
            engine.scan(at)
            return
        for organization_id in db.session.scalars(
                sa.select(Alert.organization_id.distinct())
                .where(Alert.status == AlertStatus.OPEN, Alert.organization_id.is_not(None))
                .order_by(Alert.organization_id)).all():
            engine.check_organization(organization_id, at)
        engine.announce(at)
        followup.run_due(at, engine.recount_platform)

    def _act(self, action: Action) -> None:
        """An administrator's exclusion or inclusion, as `dashboard.sync.actions` makes it, then the re-check
        an exclusion queues."""
        record = db.session.get(SyncRecord, action.record_id)
        if action.action == "exclude" and record.status in WAITING_STATUSES:
            record.status = RecordStatus.EXCLUDED
        elif action.action == "include" and record.status == RecordStatus.EXCLUDED:
            record.status = RecordStatus.FAILED if record.consecutive_failures > 0 else RecordStatus.PENDING
        self.status[action.record_id] = record.status
        db.session.commit()
        if action.action == "exclude":
            engine.check_organization(action.organization_id, action.at, refresh_figures=True)

    def _evaluate(self, now: datetime, attempts: list[Attempt]) -> None:
        connector = db.session.get(Connector, attempts[0].connector_id)
        batch = record_batch(
            connector,
            [Outcome(record_id=a.record_id, attempted_at=a.attempted_at, ok=a.ok, error_code=a.error_code,
                     error_message=a.error_message) for a in attempts],
            source="orchestrator", started_at=attempts[0].attempted_at, finished_at=now,
            max_auto_attempts=self.max_auto_attempts)
        db.session.commit()
        engine.evaluate_batch(batch.id, now)
        for a in attempts:
            if self.newest.get(a.record_id, datetime.min) <= a.attempted_at:
                self.newest[a.record_id] = a.attempted_at
                if self.status.get(a.record_id) != RecordStatus.EXCLUDED:
                    self.status[a.record_id] = RecordStatus.SYNCED if a.ok else RecordStatus.FAILED


def _batches(period: list[Attempt]) -> list[tuple[datetime, list[Attempt]]]:
    """The period's attempts by their logged batch, in the order of each batch's latest attempt."""
    by_batch: dict[int, list[Attempt]] = defaultdict(list)
    for attempt in period:
        by_batch[attempt.batch_id].append(attempt)
    return sorted(((max(a.attempted_at for a in attempts), attempts) for attempts in by_batch.values()),
                  key=lambda batch: (batch[0], batch[1][0].id))


def _open(fingerprint: str) -> bool:
    return db.session.scalar(sa.select(Alert.id).where(Alert.fingerprint == fingerprint,
                                                       Alert.status == AlertStatus.OPEN)) is not None


def _floor(at: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1)
    return epoch + ((at - epoch) // step) * step


def _hours(start: datetime, end: datetime) -> list[datetime]:
    ticks, tick = [], start
    while tick < end:
        ticks.append(tick)
        tick = _floor(tick, SCAN_INTERVAL) + SCAN_INTERVAL
    return ticks


def _collect() -> tuple[list[ReplayedAlert], list[ReplayedNotification]]:
    """The scratch database's alerts, each titled as it was raised (an alert's own title says, once it is
    resolved, that it is cleared), and its notifications."""
    raised_titles: dict[int, str] = {}
    for alert_id, title in db.session.execute(
            sa.select(Notification.alert_id, Notification.title)
            .where(Notification.alert_id.is_not(None), Notification.event == NotificationEvent.RAISED)
            .order_by(Notification.id)):
        raised_titles.setdefault(alert_id, title)
    alerts = [ReplayedAlert(slug, a.rule, raised_titles.get(a.id, a.title), a.opened_at, a.resolved_at,
                            bool(a.flapping))
              for a, slug in db.session.execute(
                  sa.select(Alert, Organization.slug).outerjoin(Organization, Organization.id == Alert.organization_id)
                  .order_by(Alert.opened_at, Alert.id))]
    notifications = [ReplayedNotification(email, bool(is_global), slug, n.event, n.title, n.created_at,
                                          n.gathered_into_id is None)
                     for n, email, is_global, slug in db.session.execute(
                         sa.select(Notification, User.email, User.is_global_admin, Organization.slug)
                         .join(User, User.id == Notification.user_id)
                         .outerjoin(Organization, Organization.id == Notification.organization_id)
                         .order_by(Notification.created_at, Notification.id))]
    return alerts, notifications
