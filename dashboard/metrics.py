"""Prometheus metrics at GET /metrics, for every process of one machine, behind a bearer token.

What happened is counted where it happens, in whichever process: batches and their attempts by
outcome, alerts raised and resolved by rule, notifications by event and delivery (announced, or
gathered into another), alert job times, live events sent and streams open. prometheus-client's
multiprocess mode keeps each process's values in files under PROMETHEUS_MULTIPROC_DIR (default
`instance/metrics`), and any web process of the machine sums them when scraped. Batches, alerts and
notifications are counted from the rows a session commits, so a rolled-back race counts nothing and
the writers need no calls of their own. What the service holds now (open alerts by rule, batches not
yet evaluated, jobs per queue) is read from the database and Redis at scrape time.

Without a `METRICS_TOKEN` the endpoint does not exist (404); a request without that token gets 401.
"""
from __future__ import annotations

import glob
import hmac
import os
import re
import time
from functools import wraps
from typing import Any, Callable, Iterator, TypeVar

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, has_app_context, request
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from dashboard.config import metrics_directory
from dashboard.processes import is_running
from dashboard.vocabulary import AlertEventKind

# The processes a run command starts inherit this variable, so every process of the machine writes to the same
# directory. prometheus-client reads it when first imported, which may have been before this module was.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_directory()))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
if values.ValueClass is values.MutexValue:
    values.ValueClass = values.MultiProcessValue()

F = TypeVar("F", bound=Callable[..., Any])
_KEY = "metrics_pending"

batches = Counter("dashboard_sync_batches", "Sync batches written to the sync log, by source (api, orchestrator)",
                  ["source"])
attempts = Counter("dashboard_sync_attempts", "Sync attempts written to the sync log, by outcome", ["outcome"])
alerts_raised = Counter("dashboard_alerts_raised", "Alerts raised, by rule", ["rule"])
alerts_resolved = Counter("dashboard_alerts_resolved", "Alerts resolved, by rule", ["rule"])
notifications = Counter("dashboard_notifications",
                        "Notifications created, by event and delivery (announced, or gathered into another)",
                        ["event", "delivery"])
alert_job_seconds = Histogram("dashboard_alert_evaluation_seconds", "Time an alert job took, by job", ["job"],
                              buckets=(.002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30))
stream_clients = Gauge("dashboard_stream_clients", "Live event streams open", multiprocess_mode="livesum")
stream_events = Counter("dashboard_stream_events_sent", "Live events written to open streams")

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    """The Prometheus text format for this machine's processes and the shared database and Redis."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        abort(404)
    auth = request.authorization
    given = auth.token if auth is not None and auth.type == "bearer" and auth.token else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        return Response("A valid metrics token is required: Authorization: Bearer <token>\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain")
    _forget_dead_streams()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(_Holdings())
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def timed_alert_job(func: F) -> F:
    """Observe how long the job takes in `dashboard_alert_evaluation_seconds`, labelled with its name."""
    histogram = alert_job_seconds.labels(func.__name__)

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            histogram.observe(time.perf_counter() - started)

    return wrapper  # type: ignore[return-value]


class _Holdings(Collector):
    """What the service holds at scrape time: open alerts by rule, unevaluated batches, jobs per queue."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from dashboard.extensions import db
        from dashboard.models import Alert, SyncBatch
        from dashboard.models.alerts import RULES

        open_by_rule = dict(db.session.execute(
            sa.select(Alert.rule, sa.func.count()).where(Alert.status == "open").group_by(Alert.rule)).all())
        unevaluated = db.session.scalar(
            sa.select(sa.func.count()).select_from(SyncBatch).where(SyncBatch.evaluated_at.is_(None)))
        db.session.rollback()  # no transaction stays open across the Redis calls
        alerts = GaugeMetricFamily("dashboard_open_alerts", "Open alerts, by rule", labels=["rule"])
        for rule in RULES:
            alerts.add_metric([rule], open_by_rule.get(rule, 0))
        yield alerts
        yield GaugeMetricFamily("dashboard_unevaluated_batches", "Committed batches whose alert evaluation has "
                                "not run yet", value=unevaluated or 0)
        yield from _queues()


def _queues() -> Iterator[GaugeMetricFamily]:
    import redis

    from dashboard.queues import alerts_queue, sync_queue

    up = GaugeMetricFamily("dashboard_redis_up", "1 when Redis answered this scrape")
    jobs = GaugeMetricFamily("dashboard_queue_jobs", "Jobs per queue and state", labels=["queue", "state"])
    try:
        for queue in (alerts_queue(), sync_queue()):
            jobs.add_metric([queue.name, "queued"], queue.count)
            jobs.add_metric([queue.name, "scheduled"], queue.scheduled_job_registry.count)
            jobs.add_metric([queue.name, "started"], queue.started_job_registry.count)
            jobs.add_metric([queue.name, "failed"], queue.failed_job_registry.count)
    except (redis.ConnectionError, redis.TimeoutError):
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    yield up
    yield jobs


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _forget_dead_streams() -> None:
    """Drop the open-stream counts of processes that have died (killed ones never said goodbye)."""
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "gauge_live*_*.db")):
        match = _LIVE_GAUGE_FILE.search(path)
        if match and not is_running(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)))



def _counting() -> bool:
    """Count except in an app whose events nobody watches (a replay's scratch database)."""
    return not has_app_context() or current_app.config.get("LIVE_EVENTS", True)


@sa.event.listens_for(Session, "after_flush")
def _note_new_rows(session: Session, _context: Any) -> None:
    """Note the counts of the batches, alerts and notifications just flushed; they count once committed."""
    from dashboard.models import Alert, AlertEvent, Notification, SyncBatch

    if not _counting():
        return
    for row in session.new:
        if isinstance(row, SyncBatch):
            _note(session, batches.labels(row.source), 1)
            _note(session, attempts.labels("failure"), row.failure_count)
            _note(session, attempts.labels("success"), row.attempt_count - row.failure_count)
        elif isinstance(row, Alert):
            _note(session, alerts_raised.labels(row.rule), 1)
        elif isinstance(row, AlertEvent) and row.kind == AlertEventKind.RESOLVED:
            _note(session, alerts_resolved.labels(_rule_of(session, row.alert_id)), 1)
        elif isinstance(row, Notification):
            delivery = "announced" if row.gathered_into_id is None else "gathered"
            _note(session, notifications.labels(row.event, delivery), 1)


def _rule_of(session: Session, alert_id: int) -> str:
    """The rule of the alert being resolved, without loading anything through the session while it flushes."""
    from dashboard.models import Alert

    alert = session.identity_map.get(identity_key(Alert, alert_id))
    rule = sa.inspect(alert).dict.get("rule") if alert is not None else None
    return rule or session.connection().scalar(sa.select(Alert.rule).where(Alert.id == alert_id))


def _note(session: Session, counter: Counter, amount: int) -> None:
    session.info.setdefault(_KEY, []).append((counter, amount))


@sa.event.listens_for(Session, "after_commit")
def _count_committed_rows(session: Session) -> None:
    for counter, amount in session.info.pop(_KEY, ()):
        if amount:
            counter.inc(amount)


@sa.event.listens_for(Session, "after_rollback")
def _forget_rolled_back_rows(session: Session) -> None:
    session.info.pop(_KEY, None)
