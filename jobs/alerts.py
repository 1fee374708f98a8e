"""Alert jobs: evaluate a committed batch, re-check an organization, scan for time-driven rules."""
from __future__ import annotations

import logging
from datetime import timedelta, timezone

from dashboard import metrics
from jobs import in_app_context

log = logging.getLogger(__name__)


def enqueue_evaluation(batch_id: int) -> None:
    """Queue a batch's evaluation now (the caller holds no transaction); the sweep covers a Redis outage."""
    from dashboard.queues import evaluate_now

    evaluate_now(batch_id)


def schedule_announcement() -> None:
    """Queue the announcement for when the earliest grouping wait ends (the minute scan is the backstop)."""
    from dashboard.alerts.engine import next_announcement
    from dashboard.queues import alerts_queue

    due = next_announcement()
    if due is None:
        return
    # RQ schedules to the whole second, rounding down: run a second later so the wait has surely ended.
    run_at = due.replace(microsecond=0, tzinfo=timezone.utc) + timedelta(seconds=1)
    try:
        alerts_queue().enqueue_at(run_at, "jobs.alerts.announce", job_id=f"announce-{run_at:%Y%m%dT%H%M%S}")
    except Exception:  # noqa: BLE001 - the minute scan announces it
        log.warning("could not schedule the announcement due at %s", due)


@metrics.timed_alert_job
@in_app_context
def evaluate_batch(batch_id: int) -> None:
    from dashboard.alerts.engine import evaluate_batch as evaluate

    evaluate(batch_id)
    schedule_announcement()


@metrics.timed_alert_job
@in_app_context
def check_organization(organization_id: int) -> None:
    from dashboard.alerts.engine import check_organization as check

    check(organization_id, refresh_figures=True)
    schedule_announcement()


@metrics.timed_alert_job
@in_app_context
def announce() -> None:
    """Tell global admins of alerts whose grouping wait has ended."""
    from dashboard.alerts.engine import announce as run_announce

    run_announce()
    schedule_announcement()


@metrics.timed_alert_job
@in_app_context
def scan() -> None:
    """Every minute: staleness, the grouping wait, ended maintenance windows and snoozes, escalation, and
    batches that were never evaluated."""
    from dashboard.alerts.engine import scan as run_scan
    from dashboard.extensions import redis_ext
    from dashboard.models import utcnow
    from dashboard.scan_clock import record_scan

    now = utcnow()
    run_scan(now)
    record_scan(redis_ext.client, now)
