"""The Tripletex pre-flight: records dated in a closed period are held back as one connector alert, and records
of open periods still sync (issue #13, items 1 and 5)."""
from __future__ import annotations

from datetime import datetime, timedelta

from dashboard.alerts.engine import evaluate_batch
from dashboard.extensions import db
from dashboard.models import SyncAttempt, SyncRecord, utcnow
from dashboard.sync import orchestrator
from tests import factories
from tests.alerting import alerts
from tests.fakes.tripletex import EMPLOYEE_TOKEN
from tests.integration.test_tripletex import _in_the_app, app_config, fake  # noqa: F401  (fixtures)


def test_given_a_closed_period_when_a_connector_syncs_then_its_records_are_held_back_and_the_others_book(
        world, fake):  # noqa: F811
    connector = factories.connector(world.org_a, name="Tripletex", provider="tripletex",
                                    settings={"base_url": fake.base_url}, secret=EMPLOYEE_TOKEN)
    now = utcnow()
    closed = [factories.record(connector, approved_at=datetime(2026, 10, 10 + i, 12)) for i in range(3)]
    open_ = [factories.record(connector, approved_at=now - timedelta(minutes=i + 1)) for i in range(2)]
    db.session.commit()
    fake.close_period(2026, 10)

    batch = orchestrator.sync_connector(connector.id)
    evaluate_batch(batch.id)

    db.session.expire_all()
    assert {db.session.get(SyncRecord, r.id).status for r in open_} == {"synced"}
    assert {db.session.get(SyncRecord, r.id).last_error_code for r in closed} == {"period_locked"}
    assert {v["externalVoucherNumber"] for v in fake.vouchers} == {r.source_ref for r in open_}
    held = db.session.scalars(SyncAttempt.query.filter_by(error_code="period_locked").statement).all()
    assert len(held) == 3 and all("is closed in Tripletex" in a.error_message for a in held)
    [alert] = alerts(rule="connector_failing")
    assert alert.error_code == "period_locked" and alerts(rule="consecutive_failures") == []
