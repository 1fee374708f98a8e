"""Two real RQ worker processes evaluating racing batches of one organization create nothing twice."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Alert, Notification, SyncBatch
from dashboard.queues import alerts_queue
from tests import factories
from tests.alerting import T0, log_batch, run

pytestmark = pytest.mark.slow


def _worker(database_url: str, redis_url: str, instance: str, log) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "INSTANCE_PATH": instance}
    return subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "rq"), "worker", "--burst", "--url", redis_url,
         "--worker-class", "jobs.worker.AppWorker", "--path", os.getcwd(), "alerts"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )


def test_two_workers_racing_on_one_organization_create_each_alert_once(world, database_url, redis_url, tmp_path):
    """Given batches holding third failures, each enqueued twice, when two workers race, all is created once."""
    records = [factories.record(world.connector_a, record_type="mileage_claim") for _ in range(6)]
    db.session.commit()
    for i in range(2):
        run(world.connector_a, [(r, "account_mapping_missing") for r in records], at=T0 + timedelta(minutes=10 * i))
    third = [log_batch(world.connector_a, [(r, "account_mapping_missing")], at=T0 + timedelta(minutes=30, seconds=i))
             for i, r in enumerate(records)]
    queue = alerts_queue()
    for copy in range(2):
        for batch_id in third:
            queue.enqueue("jobs.alerts.evaluate_batch", batch_id, job_id=f"race-{copy}-{batch_id}")
    logs = [open(tmp_path / f"worker-{i}.log", "w") for i in range(2)]
    workers = [_worker(database_url, redis_url, str(tmp_path), log) for log in logs]
    for w in workers:
        w.wait(timeout=120)
    outputs = [(tmp_path / f"worker-{i}.log").read_text() for i in range(2)]
    assert all(w.returncode == 0 for w in workers), outputs
    db.session.rollback()  # end the test's read snapshot; the workers committed after it
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SyncBatch)
                             .where(SyncBatch.evaluated_at.is_(None))) == 0
    alerts = db.session.scalars(sa.select(Alert).where(Alert.rule == "consecutive_failures")).all()
    assert len(alerts) == 1 and alerts[0].affected_count == 6
    notes = db.session.execute(sa.select(Notification.alert_id, Notification.user_id, Notification.event)).all()
    assert len(notes) == len(set(notes))
    assert [(n.user_id, n.event) for n in notes if n.alert_id == alerts[0].id] == [(world.admin_a.id, "raised")]
    assert len(queue.failed_job_registry) == 0
