"""One notification round reads its people once (issue 16: the evaluation's fixed cost per notification)."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import sqlalchemy as sa

from dashboard.extensions import db, redis_ext
from dashboard.live.publish import CHANNEL_PREFIX, user_channel
from dashboard.models import Membership, utcnow
from dashboard.vocabulary import LiveEvent
from tests import factories
from tests.alerting import notifications, run
from tests.sql_capture import statements as sql_statements


def _raise(connector, code: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Fail a new record three times in a row (the third evaluation raises); the statements of that evaluation."""
    record = factories.record(connector)
    db.session.commit()
    start = utcnow() - timedelta(minutes=30)
    run(connector, [(record, code)], at=start)
    run(connector, [(record, code)], at=start + timedelta(minutes=10))
    with sql_statements(db.engine) as seen:
        run(connector, [(record, code)], at=start + timedelta(minutes=20))
    return seen


def test_given_four_admins_instead_of_one_when_an_alert_is_raised_then_the_evaluation_reads_no_more(app, world):
    """Given one organization with one admin and another with four, when each raises the same alert, both
    evaluations issue the same reads and updates: only the rows written for each person (notification, its log
    line, its email) grow with the people."""
    factories.platform(incident_min_organizations=99)  # no platform incident between the two
    for n in range(3):
        factories.user(f"more-admin-{n}@example.org", orgs=(world.org_b,))
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Membership)
                             .where(Membership.organization_id == world.org_b.id)) == 4

    one = _raise(world.connector_a, "account_mapping_missing")
    four = _raise(world.connector_b, "account_mapping_missing")

    def reads(statements: list[str]) -> list[str]:
        return [s for s in statements if not s.lstrip().upper().startswith("INSERT")]
    assert len(reads(four)) == len(reads(one)), "\n".join(reads(four))
    assert len(notifications(world.admin_a)) == 1 and len(notifications(world.admin_b)) == 1


def test_given_an_unread_notification_when_another_alert_is_announced_then_the_label_counts_both(app, world):
    """Given an admin with one unread notification, when a second alert is raised, its live event's tray label
    says two are unread (the round reads the count with the people, before adding the one it announces)."""
    _raise(world.connector_a, "account_mapping_missing")
    pubsub = redis_ext.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL_PREFIX + user_channel(world.admin_a.id))
    _raise(world.connector_a, "invalid_vat_code")
    events, deadline = [], time.monotonic() + 2.0
    while time.monotonic() < deadline and not events:
        message = pubsub.get_message(timeout=0.1)
        if message is not None and json.loads(message["data"])["type"] == LiveEvent.NOTIFICATION:
            events.append(json.loads(message["data"])["data"])
    [event] = events
    assert len(notifications(world.admin_a)) == 2
    assert "2 unread" in event["label"]
