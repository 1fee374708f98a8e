"""The sync orchestrator with real RQ workers on a real Redis and a real database."""
from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import pytest
import sqlalchemy as sa
from rq import SimpleWorker

from dashboard.alerts.engine import sweep_unevaluated
from dashboard.extensions import db, redis_ext
from dashboard.models import SyncAttempt, SyncBatch, SyncRecord, utcnow
from dashboard.queues import alerts_queue, sync_queue
from dashboard.sync import orchestrator
from dashboard.sync.retry import next_attempt_at
from jobs.sync import enqueue_sync
from tests import factories


def work() -> None:
    """Run every queued job in this process: alerts first, as in production."""
    SimpleWorker([alerts_queue(), sync_queue()], connection=redis_ext.client).work(burst=True)
    SimpleWorker([alerts_queue(), sync_queue()], connection=redis_ext.client).work(burst=True)


def _records(connector, n, **fields):
    records = [factories.record(connector, approved_at=utcnow() - timedelta(hours=1, minutes=i), **fields)
               for i in range(n)]
    db.session.commit()
    return records


def _scenario(connector, **settings):
    connector.settings = settings
    db.session.commit()


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_sync_job_run_by_a_real_worker_logs_attempts_and_evaluates(world):
    """Given pending records and a healthy sandbox, when a worker runs the sync job, all are synced and evaluated."""
    _records(world.connector_a, 5)
    enqueue_sync(world.connector_a.id)
    work()
    assert count(SyncRecord, SyncRecord.status == "synced") == 5
    assert count(SyncAttempt) == 5
    [batch] = db.session.scalars(sa.select(SyncBatch)).all()
    assert batch.evaluated_at is not None
    db.session.refresh(world.connector_a)
    assert world.connector_a.last_success_at is not None


def test_failures_are_logged_with_their_streak(world):
    _scenario(world.connector_a, scenario="invalid_vat_code", record_type="mileage_claim")
    [record] = _records(world.connector_a, 1, record_type="mileage_claim")
    orchestrator.sync_connector(world.connector_a.id)
    db.session.refresh(record)
    assert record.status == "failed" and record.consecutive_failures == 1
    assert record.last_error_code == "invalid_vat_code" and record.next_attempt_at is not None
    [attempt] = db.session.scalars(sa.select(SyncAttempt)).all()
    assert attempt.failure_streak == 1 and attempt.error_code == "invalid_vat_code"


def test_period_locked_scenario_fails_records_of_its_type_with_period_locked(world):
    """Given the sandbox's period_locked scenario, a record of the locked type fails with period_locked."""
    _scenario(world.connector_a, scenario="period_locked", record_type="mileage_claim")
    [record] = _records(world.connector_a, 1, record_type="mileage_claim")
    orchestrator.sync_connector(world.connector_a.id)
    db.session.refresh(record)
    assert record.status == "failed" and record.last_error_code == "period_locked"
    [attempt] = db.session.scalars(sa.select(SyncAttempt)).all()
    assert attempt.error_code == "period_locked"


def test_batch_stops_at_the_first_connector_level_error(world):
    """Given expired credentials, when a batch runs, it stops after the first attempt instead of pushing all."""
    _scenario(world.connector_a, scenario="credentials_expired")
    _records(world.connector_a, 10)
    batch = orchestrator.sync_connector(world.connector_a.id)
    assert batch.attempt_count == 1 and batch.stopped_reason == "credentials_expired"
    assert count(SyncRecord, SyncRecord.status == "pending") == 9


def test_an_exception_mid_batch_leaves_no_partial_log(world):
    """Given a failure while writing the batch, nothing of it is logged and no record changes."""
    records = _records(world.connector_a, 4)
    with mock.patch("dashboard.sync.log._add_hourly_counts", side_effect=RuntimeError("disk full")):
        with pytest.raises(RuntimeError):
            orchestrator.sync_connector(world.connector_a.id)
    db.session.rollback()
    assert count(SyncAttempt) == 0 and count(SyncBatch) == 0
    assert {db.session.get(SyncRecord, r.id).status for r in records} == {"pending"}


def test_disabled_connector_is_not_synced(world):
    world.connector_a.enabled = False
    db.session.commit()
    _records(world.connector_a, 3)
    assert orchestrator.sync_connector(world.connector_a.id) is None
    assert orchestrator.connectors_to_sync() == [world.connector_b.id]
    assert count(SyncAttempt) == 0


def test_two_sync_jobs_never_run_at_once_for_one_connector(world):
    _records(world.connector_a, 3)
    with orchestrator.connector_lock(world.connector_a.id) as held:
        assert held
        assert orchestrator.sync_connector(world.connector_a.id) is None
    assert orchestrator.sync_connector(world.connector_a.id) is not None


def test_only_due_failed_records_are_retried(world):
    _scenario(world.connector_a, scenario="invalid_vat_code", record_type="expense_claim")
    [record] = _records(world.connector_a, 1)
    orchestrator.sync_connector(world.connector_a.id)
    assert orchestrator.sync_connector(world.connector_a.id) is None  # not due yet
    db.session.execute(sa.update(SyncRecord).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert orchestrator.sync_connector(world.connector_a.id).attempt_count == 1


@pytest.mark.parametrize("transient", [True, False])
def test_third_attempt_of_a_failing_record_falls_within_an_hour(transient):
    """Given the default policy, a failing record's third attempt is due within an hour, with sync every 5 min."""
    t = utcnow()
    first_retry = next_attempt_at(t, transient, 1, 5)
    second_retry = next_attempt_at(first_retry + timedelta(minutes=5), transient, 2, 5)
    assert second_retry + timedelta(minutes=5) - t <= timedelta(hours=1)
    assert next_attempt_at(t, transient, 5, 5) is None


def test_retry_after_wins():
    t = utcnow()
    assert next_attempt_at(t, True, 1, 5, retry_after=900) == t + timedelta(seconds=900)


def test_sweep_evaluates_a_batch_that_was_never_evaluated(world, app):
    """Given a committed batch whose evaluation was never enqueued (Redis down), the sweep evaluates it."""
    _records(world.connector_a, 2)
    with mock.patch("jobs.alerts.alerts_queue", side_effect=ConnectionError("redis down"), create=True), \
            mock.patch("dashboard.queues.alerts_queue", side_effect=ConnectionError("redis down")):
        batch = orchestrator.sync_connector(world.connector_a.id)
    db.session.refresh(batch)
    assert batch.evaluated_at is None
    assert sweep_unevaluated(utcnow() + timedelta(minutes=1)) == [batch.id]
    db.session.refresh(batch)
    assert batch.evaluated_at is not None


def test_sync_all_enqueues_every_enabled_connector(world):
    from jobs.sync import sync_all

    sync_all()
    assert sorted(job.args[0] for job in sync_queue().jobs) == sorted([world.connector_a.id, world.connector_b.id])


def test_threshold_alert_is_announced_when_its_grouping_wait_ends(world, db):
    """Given a 1 s grouping wait, when an error-threshold alert is raised, a scheduled job tells global
    admins once the wait ends, without waiting for the minute scan."""
    from rq.scheduler import RQScheduler

    from jobs.alerts import enqueue_evaluation
    from tests.alerting import announced, log_batch, notifications, run

    factories.platform(grouping_wait_seconds=1)
    db.session.commit()
    records = _records(world.connector_a, 11)
    run(world.connector_a, [(r, "validation_failed") for r in records[:10]], at=utcnow() - timedelta(minutes=1))
    enqueue_evaluation(log_batch(world.connector_a, [(records[10], "validation_failed")]))
    work()
    db.session.rollback()
    assert notifications(world.global_admin) == []
    assert len(alerts_queue().scheduled_job_registry) == 1
    time.sleep(2.2)
    scheduler = RQScheduler([alerts_queue()], connection=redis_ext.client)
    scheduler.acquire_locks()
    scheduler.enqueue_scheduled_jobs()
    work()
    db.session.rollback()
    assert [n.event for n in announced(world.global_admin)] == ["summary"]
