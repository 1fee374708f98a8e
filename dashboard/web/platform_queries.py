"""Reading the global summary: organizations worst first, platform incidents, and the system's health.

The organizations are paged, worst first: one statement ranks every organization
from maintained counters and index seeks (the hourly attempt counts, the open
alerts, the oldest waiting record), one reads the figures of the page's own
organizations. Neither reads the sync log, and neither runs a query per
organization from Python, so the page costs the same with a thousand.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.cron_scheduler_registry import get_registry_key
from rq.defaults import DEFAULT_CRON_SCHEDULER_TTL, DEFAULT_WORKER_TTL

from dashboard.alerts import rules
from dashboard.extensions import db
from dashboard.models import Alert, Connector, HourlyAttemptCount, Organization, SyncBatch, SyncRecord
from dashboard.scan_clock import LAST_SCAN_KEY
from dashboard.vocabulary import WAITING_STATUSES, AlertStatus

ERROR_WINDOW = timedelta(hours=24)
RECENT_INCIDENTS = timedelta(days=7)
INCIDENT_LIMIT = 20
UNEVALUATED_AFTER = timedelta(minutes=1)
ORGANIZATIONS_PER_PAGE = 25


@dataclass(frozen=True)
class OrganizationSummary:
    id: int
    slug: str
    name: str
    connectors: int
    enabled_connectors: int
    last_success_at: datetime | None
    errors_24h: int
    waiting: int
    """Approved records not yet synced: pending or failed, not excluded."""
    oldest_waiting_at: datetime | None
    open_alerts: int = 0
    open_rules: list[str] = field(default_factory=list)


class _Rank(NamedTuple):
    """What ranks an organization: read for every organization, from counters and index seeks only."""

    id: int
    name: str
    open_alerts: int
    errors_24h: int
    oldest_waiting_at: datetime | None

    def severity(self) -> tuple[int, int, datetime, str, int]:
        """Sort key, worst first: more open alerts, then more errors, then the oldest waiting record."""
        return (-self.open_alerts, -self.errors_24h, self.oldest_waiting_at or datetime.max, self.name, self.id)


@dataclass(frozen=True)
class OrganizationPage:
    """One page of the organizations, worst first, and where it lies among them all."""

    organizations: list[OrganizationSummary]
    number: int
    """1 for the worst organizations."""
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_position(self) -> int:
        """The position of the page's first organization among them all (1-based; 0 when there are none)."""
        return (self.number - 1) * self.size + 1 if self.organizations else 0

    @property
    def last_position(self) -> int:
        return (self.number - 1) * self.size + len(self.organizations)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def organization_page(now: datetime, number: int = 1, size: int = ORGANIZATIONS_PER_PAGE) -> OrganizationPage:
    """The `number`th page of active organizations worst first (the last page when it is past the end). Archived
    organizations are not ranked: the organizations' management page lists them.

    A constant number of statements whatever the number of organizations: one ranks them all from the
    hourly counters, the open alerts and the index of waiting records (a seek or two each, no scan of the
    sync log), one reads the page's own figures.
    """
    alerts = _open_alerts_by_organization()
    ranks = sorted(_ranks(now, alerts), key=_Rank.severity)
    pages = max(1, -(-len(ranks) // size))
    number = min(max(1, number), pages)
    chosen = ranks[(number - 1) * size:number * size]
    figures = _figures({rank.id for rank in chosen})
    organizations = [
        OrganizationSummary(
            id=rank.id, name=rank.name, errors_24h=rank.errors_24h, oldest_waiting_at=rank.oldest_waiting_at,
            open_alerts=rank.open_alerts, open_rules=sorted(alerts.get(rank.id, {})), **figures[rank.id],
        )
        for rank in chosen
    ]
    return OrganizationPage(organizations=organizations, number=number, size=size, total=len(ranks))


def _ranks(now: datetime, alerts: dict[int, dict[str, int]]) -> list[_Rank]:
    org = Organization.id
    # `failures > 0`, written out rather than bound, lets the sum read ix_hourly_attempt_counts_failing alone.
    errors = (sa.select(sa.func.coalesce(sa.func.sum(HourlyAttemptCount.failures), 0))
              .where(HourlyAttemptCount.organization_id == org, HourlyAttemptCount.hour > now - ERROR_WINDOW,
                     HourlyAttemptCount.failures > sa.literal_column("0")))
    # One MIN per waiting status: each is a single seek of ix_sync_records_org_status_approved, where a MIN over
    # both statuses at once would read every waiting record of the organization.
    oldest = [sa.select(sa.func.min(SyncRecord.approved_at))
              .where(SyncRecord.organization_id == org, SyncRecord.status == status).scalar_subquery()
              for status in WAITING_STATUSES]
    rows = db.session.execute(
        sa.select(Organization.id, Organization.name, errors.scalar_subquery(), *oldest)
        .where(Organization.archived_at.is_(None))
    ).all()
    return [_Rank(id=row[0], name=row[1], open_alerts=sum(alerts.get(row[0], {}).values()), errors_24h=row[2],
                  oldest_waiting_at=min((t for t in row[3:] if t is not None), default=None))
            for row in rows]


def _figures(organization_ids: set[int]) -> dict[int, dict[str, Any]]:
    """The figures shown for a page's organizations alone, by organization."""
    org = Organization.id
    connectors = sa.select(sa.func.count()).where(Connector.organization_id == org, Connector.removed_at.is_(None))
    enabled = sa.select(sa.func.count()).where(Connector.organization_id == org, Connector.enabled)
    last_success = sa.select(sa.func.max(Connector.last_success_at)).where(Connector.organization_id == org)
    waiting = sa.select(sa.func.count()).where(SyncRecord.organization_id == org,
                                               SyncRecord.status.in_(WAITING_STATUSES))
    rows = db.session.execute(
        sa.select(Organization.id, Organization.slug, connectors.scalar_subquery().label("connectors"),
                  enabled.scalar_subquery().label("enabled_connectors"),
                  last_success.scalar_subquery().label("last_success_at"), waiting.scalar_subquery().label("waiting"))
        .where(Organization.id.in_(organization_ids))
    ).all()
    return {row.id: {k: v for k, v in row._mapping.items() if k != "id"} for row in rows}


def _open_alerts_by_organization() -> dict[int, dict[str, int]]:
    rows = db.session.execute(
        sa.select(Alert.organization_id, Alert.rule, sa.func.count())
        .where(Alert.status == AlertStatus.OPEN, Alert.organization_id.is_not(None))
        .group_by(Alert.organization_id, Alert.rule)
    ).all()
    alerts: dict[int, dict[str, int]] = {}
    for organization_id, rule, count in rows:
        alerts.setdefault(organization_id, {})[rule] = count
    return alerts


def platform_incidents(now: datetime) -> list[Alert]:
    """Open platform incidents and those resolved in the last week, newest first."""
    return list(db.session.scalars(
        sa.select(Alert)
        .where(Alert.organization_id.is_(None), Alert.rule == rules.PLATFORM,
               sa.or_(Alert.status == AlertStatus.OPEN, Alert.resolved_at >= now - RECENT_INCIDENTS))
        .order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(INCIDENT_LIMIT)
    ))


@dataclass(frozen=True)
class WorkerHealth:
    name: str
    state: str
    queues: list[str]
    last_heartbeat: datetime | None
    late: bool


@dataclass(frozen=True)
class SchedulerHealth:
    name: str
    last_heartbeat: datetime
    late: bool


@dataclass(frozen=True)
class QueueHealth:
    name: str
    queued: int
    failed: int


@dataclass(frozen=True)
class RedisHealth:
    workers: list[WorkerHealth]
    schedulers: list[SchedulerHealth]
    queues: list[QueueHealth]
    last_scan_at: datetime | None

    def alert_queue_unserved(self, alerts_queue: str) -> bool:
        return not any(alerts_queue in w.queues for w in self.workers)


@dataclass(frozen=True)
class Health:
    checked_at: datetime
    last_evaluated_at: datetime | None
    unevaluated_batches: int
    redis: RedisHealth | None
    """None when Redis cannot be reached."""


def system_health(now: datetime, connection: Redis, queue_names: list[str]) -> Health:
    """Workers, scheduler and queues from Redis (None if it is down), evaluation progress from the database."""
    last_evaluated = db.session.scalar(sa.select(sa.func.max(SyncBatch.evaluated_at)))
    unevaluated = db.session.scalar(
        sa.select(sa.func.count()).where(SyncBatch.evaluated_at.is_(None),
                                         SyncBatch.received_at < now - UNEVALUATED_AFTER)
    ) or 0
    try:
        redis_health: RedisHealth | None = _redis_health(now, connection, queue_names)
    except RedisError:
        redis_health = None
    return Health(checked_at=now, last_evaluated_at=last_evaluated, unevaluated_batches=unevaluated,
                  redis=redis_health)


def _redis_health(now: datetime, connection: Redis, queue_names: list[str]) -> RedisHealth:
    workers = [
        WorkerHealth(name=w.name, state=w.get_state(), queues=w.queue_names(),
                     last_heartbeat=_naive_utc(w.last_heartbeat),
                     late=w.last_heartbeat is None
                     or _naive_utc(w.last_heartbeat) < now - timedelta(seconds=DEFAULT_WORKER_TTL))
        for w in Worker.all(connection=connection)
    ]
    # The registry itself, not CronScheduler.all(): that drops a scheduler whose heartbeat stopped,
    # and a stopped scheduler is exactly what this panel must show.
    schedulers = []
    for name, score in connection.zrange(get_registry_key(), 0, -1, withscores=True):
        beat = datetime.fromtimestamp(score, tz=timezone.utc).replace(tzinfo=None)
        schedulers.append(SchedulerHealth(name=name.decode() if isinstance(name, bytes) else name,
                                          last_heartbeat=beat,
                                          late=beat < now - timedelta(seconds=DEFAULT_CRON_SCHEDULER_TTL)))
    queues = []
    for queue_name in queue_names:
        queue = Queue(queue_name, connection=connection)
        queues.append(QueueHealth(name=queue_name, queued=queue.count, failed=queue.failed_job_registry.get_job_count(cleanup=False)))
    return RedisHealth(workers=sorted(workers, key=lambda w: w.name), schedulers=schedulers, queues=queues,
                       last_scan_at=_parse_time(connection.get(LAST_SCAN_KEY)))


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _parse_time(raw: bytes | None) -> datetime | None:
    """An ISO timestamp (naive means UTC) as naive UTC; None if absent or unreadable."""
    if raw is None:
        return None
    try:
        return _naive_utc(datetime.fromisoformat(raw.decode()))
    except ValueError:
        return None
