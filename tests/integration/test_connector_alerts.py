"""Connector-level alerts silence their symptoms (issue #13, item 5): one alert for the cause, none per record."""
from datetime import timedelta

import pytest

from dashboard.models import Alert
from tests import factories
from tests.alerting import T0, affected_ids, alerts, notifications, run

EXPIRED, LOCKED, RATE_LIMITED, MAPPING = "credentials_expired", "period_locked", "rate_limited", "account_mapping_missing"


@pytest.fixture()
def records(world):
    return [factories.record(world.connector_a, record_type="expense_claim", approved_at=T0 - timedelta(hours=2))
            for _ in range(4)]


def _fail_each(world, records, code, times, start=T0):
    for i in range(times):
        run(world.connector_a, [(r, code) for r in records], at=start + timedelta(minutes=10 * i))


def test_given_expired_credentials_when_every_record_keeps_failing_then_one_connector_alert_and_no_record_alerts(
        world, records):
    """Three records failing three times (nine failures: under the error threshold, which counts every failure)."""
    _fail_each(world, records[:3], EXPIRED, times=3)

    [alert] = alerts()
    assert (alert.rule, alert.error_code, alert.connector_id) == ("connector_failing", EXPIRED, world.connector_a.id)
    assert affected_ids(alert) == {r.id for r in records[:3]}
    assert "Credentials expired" in alert.title and "3 records waiting" in alert.title
    assert len(notifications(world.admin_a, event="raised")) == 1


def test_given_a_connector_alert_when_the_connector_answers_again_then_it_resolves_with_a_notification(
        world, records):
    _fail_each(world, records, EXPIRED, times=2)

    run(world.connector_a, [(records[0], MAPPING)], at=T0 + timedelta(hours=1))

    [alert] = alerts(rule="connector_failing")
    assert alert.status == "resolved"
    assert len(notifications(world.admin_a, event="resolved")) == 1


def test_given_a_streak_that_passed_three_while_held_back_when_the_record_fails_for_its_own_cause_then_it_alerts(
        world, records):
    """A streak reaches 3 once; without this the record would never raise its own alert."""
    record = records[0]
    _fail_each(world, [record], EXPIRED, times=4)

    run(world.connector_a, [(record, MAPPING)], at=T0 + timedelta(hours=1))
    run(world.connector_a, [(record, MAPPING)], at=T0 + timedelta(hours=2))

    [own] = alerts(rule="consecutive_failures")
    assert own.error_code == MAPPING and affected_ids(own) == {record.id}


def test_a_rate_limit_alerts_only_once_it_has_lasted_fifteen_minutes(world, records):
    record = records[0]
    for minutes in (0, 5, 10):
        run(world.connector_a, [(record, RATE_LIMITED)], at=T0 + timedelta(minutes=minutes))
    assert alerts() == []

    run(world.connector_a, [(record, RATE_LIMITED)], at=T0 + timedelta(minutes=16))

    [alert] = alerts()
    assert (alert.rule, alert.error_code) == ("connector_failing", RATE_LIMITED)


def test_a_closed_period_alerts_once_and_resolves_with_its_records_not_with_other_records_successes(
        world, records):
    """A closed period concerns the records dated in it: others syncing do not clear it, its records do."""
    locked, healthy = records[:2], records[2]
    _fail_each(world, locked, LOCKED, times=3)
    run(world.connector_a, [(healthy, None)], at=T0 + timedelta(hours=1))
    [alert] = alerts(rule="connector_failing")
    assert alert.status == "open" and alerts(rule="consecutive_failures") == []

    run(world.connector_a, [(r, None) for r in locked], at=T0 + timedelta(hours=2))

    assert alerts(rule="connector_failing")[0].status == "resolved"


def test_connector_alerts_of_two_organizations_make_the_platform_incident(world):
    a = factories.record(world.connector_a, approved_at=T0 - timedelta(hours=2))
    b = factories.record(world.connector_b, approved_at=T0 - timedelta(hours=2))
    factories.platform(grouping_wait_seconds=0)

    run(world.connector_a, [(a, EXPIRED)], at=T0)
    run(world.connector_b, [(b, "system_unavailable")], at=T0 + timedelta(minutes=1))

    [platform] = alerts(rule="platform_incident")
    assert platform.status == "open" and platform.details["organizations"][0]["rules"] == ["connector_failing"]
    assert Alert.query.filter_by(rule="connector_failing").count() == 2
