"""The sync log's retention: old attempts of settled records go, in small transactions; nothing else does."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from redis import Redis
from rq.cron import CronScheduler

from dashboard.extensions import db
from dashboard.models import (Alert, AlertEvent, Connector, HourlyAttemptCount, SyncAttempt, SyncBatch, SyncRecord,
                              utcnow)
from dashboard.retention_cli import retention_cli
from dashboard.sync.log import Outcome, record_batch
from dashboard.sync.retention import apply_retention, retention_days
import jobs.retention
from tests import factories, status_factories

DAYS = 400


def logged(conn: Connector, at: datetime, outcomes: dict[int, str | None], evaluated: bool = True) -> SyncBatch:
    """One batch through the real sync-log writer, received at `at` (and evaluated then, unless told not to)."""
    batch = record_batch(conn, [
        Outcome(record_id=rid, attempted_at=at, ok=code is None, external_id="X-1" if code is None else None,
                error_code=code, error_message=code)
        for rid, code in outcomes.items()
    ], source="orchestrator", started_at=at, finished_at=at, max_auto_attempts=5)
    batch.received_at = at
    batch.evaluated_at = at if evaluated else None
    db.session.commit()
    return batch


def settled(conn: Connector, at: datetime) -> SyncRecord:
    """A record that failed once and then synced, both at `at` (an hour apart)."""
    record = factories.record(conn)
    logged(conn, at, {record.id: "timeout"})
    logged(conn, at + timedelta(hours=1), {record.id: None})
    return record


def attempts_of(record: SyncRecord) -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(SyncAttempt.record_id == record.id)) or 0


def count(model: type) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def run(now: datetime, **options) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    result = apply_retention(now, DAYS, pause=lambda: None, **options)
    return result.attempts, result.batches


@pytest.fixture()
def old(app) -> datetime:  # type: ignore[no-untyped-def]
    return utcnow().replace(microsecond=0) - timedelta(days=DAYS + 5)


def test_old_attempts_of_synced_records_go_with_their_emptied_batches(world, old):
    """Given a record that synced 405 days ago after a failure, and one that synced 10 days ago, when the
    retention runs, the old record's two attempts and their two batches go; the recent ones, the hourly
    counts and the records themselves stay."""
    settled_long_ago = settled(world.connector_a, old)
    recent = settled(world.connector_a, utcnow() - timedelta(days=10))
    hourly = count(HourlyAttemptCount)

    assert run(utcnow()) == (2, 2)

    assert attempts_of(settled_long_ago) == 0 and attempts_of(recent) == 2
    assert count(SyncBatch) == 2 and count(HourlyAttemptCount) == hourly == 4
    assert db.session.get(SyncRecord, settled_long_ago.id).status == "synced"


@pytest.mark.parametrize("kind", ["failed", "excluded", "in an open alert"])
def test_old_attempts_of_unsettled_records_stay(world, old, kind):
    """Given a record whose attempts are 405 days old and that is failed, excluded, or in an open alert, beside a
    settled record in the same batches, when the retention runs, that record's attempts and their batches stay,
    and the settled record's attempts go."""
    conn = world.connector_a
    kept, gone = factories.record(conn), factories.record(conn)
    logged(conn, old, {kept.id: "timeout", gone.id: "timeout"})
    logged(conn, old + timedelta(hours=1), {kept.id: "timeout" if kind == "failed" else None, gone.id: None})
    if kind == "excluded":
        kept.status = "excluded"
    if kind == "in an open alert":
        status_factories.alert(world.org_a, [kept])
        status_factories.alert(world.org_a, [gone], resolved_at=utcnow() - timedelta(days=DAYS))
    db.session.commit()

    attempts, batches = run(utcnow())

    assert attempts_of(kept) == 2 and attempts_of(gone) == 0
    assert (attempts, batches) == (2, 0) and count(SyncBatch) == 2


def test_attempts_of_a_batch_never_evaluated_stay(world, old):
    """Given two old batches of settled records, the second never evaluated, when the retention runs, the first
    batch and its attempts go, and the second batch and its attempts stay."""
    record = factories.record(world.connector_a)
    logged(world.connector_a, old, {record.id: "timeout"})
    unevaluated = logged(world.connector_a, old + timedelta(hours=1), {record.id: None}, evaluated=False)

    assert run(utcnow()) == (1, 1)

    assert db.session.scalars(sa.select(SyncAttempt.batch_id)).all() == [unevaluated.id]
    assert db.session.scalars(sa.select(SyncBatch.id)).all() == [unevaluated.id]


def test_alerts_and_their_events_stay(world, old):
    """Given a resolved alert of 405 days ago with its events over a record that synced then, when the
    retention runs, the record's attempts go and the alert, its records and its events stay."""
    record = settled(world.connector_a, old)
    alert = status_factories.alert(world.org_a, [record], resolved_at=old + timedelta(hours=1))
    db.session.add(AlertEvent(alert_id=alert.id, kind="raised", at=old, record_id=record.id))
    db.session.commit()

    run(utcnow())

    assert attempts_of(record) == 0
    assert count(Alert) == 1 and count(AlertEvent) == 1
    assert db.session.get(Alert, alert.id).affected_count == 1


def test_deletes_whole_batches_a_few_hundred_attempts_a_transaction(world, old):
    """Given twelve old batches of 100 attempts each, when the retention runs with chunks of 250 attempts,
    it deletes them all in six transactions of two batches, pausing after each."""
    records = status_factories.records(world.connector_a, 100)
    for k in range(12):
        logged(world.connector_a, old + timedelta(minutes=k), {r.id: None for r in records})
    transactions: list[int] = []
    db.session.commit()

    result = apply_retention(utcnow(), DAYS, chunk_attempts=250,
                             pause=lambda: transactions.append(count(SyncAttempt)))

    assert (result.attempts, result.batches) == (1200, 12)
    assert transactions == [1000, 800, 600, 400, 200, 0]


def test_a_second_run_deletes_nothing_more(world, old):
    """Given a run that deleted an old settled record's attempts and kept a failed one's, when the retention
    runs again, it deletes nothing and the log is as the first run left it."""
    settled(world.connector_a, old)
    failing = factories.record(world.connector_a)
    logged(world.connector_a, old, {failing.id: "timeout"})
    first = run(utcnow())
    left = db.session.scalars(sa.select(SyncAttempt.id).order_by(SyncAttempt.id)).all()

    second = run(utcnow())

    assert first == (2, 2) and second == (0, 0)
    assert db.session.scalars(sa.select(SyncAttempt.id).order_by(SyncAttempt.id)).all() == left
    assert attempts_of(failing) == 1


def test_the_retention_is_always_longer_than_the_api_horizon(caplog):
    """Given a retention of 20 days and an API horizon of 30, the retention kept is 31 days and a warning
    names both settings; unset, it is 400 days."""
    with caplog.at_level(logging.WARNING, logger="dashboard.sync.retention"):
        clamped = retention_days({"SYNC_LOG_RETENTION_DAYS": 20, "API_ATTEMPT_HORIZON_DAYS": 30})

    assert clamped == 31
    assert "SYNC_LOG_RETENTION_DAYS=20" in caplog.text and "API_ATTEMPT_HORIZON_DAYS=30" in caplog.text
    assert retention_days({"API_ATTEMPT_HORIZON_DAYS": 30}) == 400
    assert retention_days({"SYNC_LOG_RETENTION_DAYS": 31, "API_ATTEMPT_HORIZON_DAYS": 30}) == 31


def test_the_command_counts_on_a_dry_run_and_deletes_on_a_real_one(app, world, old):
    """Given an old settled record, `flask retention run --dry-run` says what it would delete and deletes
    nothing; `flask retention run` deletes it and says so."""
    record = settled(world.connector_a, old)
    runner = app.test_cli_runner()

    dry = runner.invoke(retention_cli, ["run", "--dry-run"])
    kept = attempts_of(record)
    real = runner.invoke(retention_cli, ["run"])

    assert dry.exit_code == 0 and "Keeping 400 days of attempts: would delete 2 attempts and 2 batches" in dry.output
    assert kept == 2
    assert real.exit_code == 0 and "deleted 2 attempts and 2 batches" in real.output
    assert attempts_of(record) == 0


def test_the_scheduler_runs_the_retention_daily(redis_url):
    """Given the cron configuration, the retention is registered on the sync queue once a day."""
    scheduler = CronScheduler(connection=Redis.from_url(redis_url))
    scheduler.load_config_from_file("jobs/cron.py")

    jobs = [job for job in scheduler.get_jobs() if job.func.__name__ == "apply_retention"]

    assert len(jobs) == 1
    assert jobs[0].queue_name == "sync" and jobs[0].cron == "17 3 * * *"


def test_the_job_keeps_the_configured_days(app, world):
    """Given SYNC_LOG_RETENTION_DAYS=100, when the scheduled job runs, a record settled 150 days ago loses its
    attempts and one settled 50 days ago keeps them."""
    app.config["SYNC_LOG_RETENTION_DAYS"] = 100
    older = settled(world.connector_a, utcnow() - timedelta(days=150))
    newer = settled(world.connector_a, utcnow() - timedelta(days=50))

    jobs.retention.apply_retention()

    assert attempts_of(older) == 0 and attempts_of(newer) == 2


def test_the_job_never_deletes_what_the_api_still_accepts(app, world):
    """Given SYNC_LOG_RETENTION_DAYS=10 under a 30-day API horizon, when the scheduled job runs, a record settled
    20 days ago keeps its attempts and one settled 40 days ago loses them (31 days are kept)."""
    app.config.update(SYNC_LOG_RETENTION_DAYS=10, API_ATTEMPT_HORIZON_DAYS=30)
    inside = settled(world.connector_a, utcnow() - timedelta(days=20))
    outside = settled(world.connector_a, utcnow() - timedelta(days=40))

    jobs.retention.apply_retention()

    assert attempts_of(inside) == 2 and attempts_of(outside) == 0
