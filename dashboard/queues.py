"""RQ queues, and the one place that enqueues jobs: after the database commits.

Alert evaluation has its own queue, which workers take first; deliveries
outside the app (emails, webhooks) have theirs, taken next; syncs come last. Jobs are queued
on the database session and sent to Redis only once its transaction has
committed, so that a job never runs before the rows it reads exist, and no
transaction (on SQLite: the write lock) is ever held across a Redis call. If
Redis is down the job is not sent, and nothing is lost: the periodic scan
sweeps batches that were never evaluated and re-checks every organization,
and the periodic sync pushes records that are due.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import current_app
from rq import Queue, Retry
from sqlalchemy.orm import Session

from dashboard.extensions import db, redis_ext

log = logging.getLogger(__name__)
_KEY = "queued_jobs"
_RETRY_INTERVALS = [1, 5, 15]


def alerts_queue() -> Queue:
    return Queue(current_app.config["QUEUE_ALERTS"], connection=redis_ext.client)


def sync_queue() -> Queue:
    return Queue(current_app.config["QUEUE_SYNC"], connection=redis_ext.client)


def delivery_queue() -> Queue:
    return Queue(current_app.config["QUEUE_DELIVERY"], connection=redis_ext.client)


WORKER_QUEUES = ("alerts", "delivery", "sync")
"""The queues a worker takes, in this order (their default names; `QUEUE_*` settings rename them)."""
DELIVERY_TIMEOUT_SECONDS = 10
"""How long one email or webhook delivery job may run."""


@dataclass(frozen=True)
class _Job:
    queue: str
    func: str
    args: tuple[Any, ...]
    options: tuple[tuple[str, Any], ...] = field(default=())


def _evaluation(batch_id: int) -> _Job:
    """One job per batch, whoever asks (the job id makes a second request a no-op)."""
    return _Job("alerts", "jobs.alerts.evaluate_batch", (batch_id,), (("job_id", f"evaluate-batch-{batch_id}"),))


def _sync(connector_id: int) -> _Job:
    return _Job("sync", "jobs.sync.sync_connector", (connector_id,), (("job_timeout", 600),))


PREVIEW_TIMEOUT_SECONDS = 600
PREVIEW_RESULT_SECONDS = 3600
"""How long a settings preview may run, and how long its result stays readable."""


def _preview(job_id: str, organization_id: int, current: dict[str, int | None],
             proposed: dict[str, int | None]) -> _Job:
    """A settings preview: CPU-bound replays, on the alerts queue; its id carries its organization."""
    return _Job("alerts", "jobs.preview.preview_settings",
                (organization_id, current, proposed),
                (("job_id", job_id), ("job_timeout", PREVIEW_TIMEOUT_SECONDS),
                 ("result_ttl", PREVIEW_RESULT_SECONDS), ("failure_ttl", PREVIEW_RESULT_SECONDS)))


def preview_job_id(organization_id: int, key: str) -> str:
    """The id of an organization's preview job; `key` makes it unguessable."""
    return f"preview-{organization_id}-{key}"


def preview_now(job_id: str, organization_id: int, current: dict[str, int | None],
                proposed: dict[str, int | None]) -> bool:
    """Queue a settings preview now, for a caller that holds no transaction; False when Redis is unreachable.

    A failed preview is not retried: the same replay would fail again, and the page offers to try again.
    """
    return _send(_preview(job_id, organization_id, current, proposed), retry=False)


def evaluate_after_commit(batch_id: int) -> None:
    """Evaluate a batch's alert rules once it is committed."""
    _queue(_evaluation(batch_id))


def check_organization_after_commit(organization_id: int) -> None:
    """Re-check an organization's open alerts (after an exclusion, a connector change) once committed."""
    _queue(_Job("alerts", "jobs.alerts.check_organization", (organization_id,)))


def sync_after_commit(connector_id: int) -> None:
    """Sync a connector at once, once its records' new state is committed."""
    _queue(_sync(connector_id))


def _delivery(func: str, args: tuple[Any, ...], job_id: str) -> _Job:
    return _Job("delivery", func, args, (("job_id", job_id), ("job_timeout", DELIVERY_TIMEOUT_SECONDS)))


def deliver_after_commit(func: str, *args: Any, job_id: str) -> None:
    """Run a delivery job (`jobs.email.send_email`, `jobs.webhooks.send_delivery`, ...) once committed.

    Its rows are the truth: a job lost with Redis is found again by the periodic delivery scan.
    """
    _queue(_delivery(func, args, job_id))


def deliver_now(func: str, *args: Any, job_id: str) -> bool:
    """Queue a delivery job now, for a caller that holds no transaction; False when Redis is unreachable."""
    return _send(_delivery(func, args, job_id), retry=False)


def evaluate_now(batch_id: int) -> bool:
    """Queue a batch's evaluation now, for a caller that holds no transaction; False when Redis is unreachable."""
    return _send(_evaluation(batch_id))


def sync_now(connector_id: int) -> bool:
    """Queue a connector's sync now, for a caller that holds no transaction; False when Redis is unreachable."""
    return _send(_sync(connector_id))


def _send(job: _Job, retry: bool = True) -> bool:
    """Send one job to Redis, retried by RQ when it fails unless `retry` is False; False (logged) when Redis is
    unreachable: the periodic scan and sync catch up (a preview's page says so)."""
    try:
        target = {"alerts": alerts_queue, "delivery": delivery_queue, "sync": sync_queue}[job.queue]()
        retries = Retry(max=len(_RETRY_INTERVALS), interval=_RETRY_INTERVALS) if retry else None
        target.enqueue(job.func, *job.args, retry=retries, **dict(job.options))
    except Exception:  # noqa: BLE001 - Redis outage: the periodic scan and sync catch up
        log.warning("could not enqueue %s%r: Redis is unreachable", job.func, job.args)
        return False
    return True


def _queue(job: _Job) -> None:
    pending: list[_Job] = db.session.info.setdefault(_KEY, [])
    if job not in pending:
        pending.append(job)


@sa.event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session: Session) -> None:
    pending = session.info.pop(_KEY, None)
    if not pending or not current_app:
        return
    for job in pending:
        _send(job)


@sa.event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)
