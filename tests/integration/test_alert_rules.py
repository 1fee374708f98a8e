"""The alert rules against a real database: the seed criteria and their boundaries."""
from datetime import timedelta

import pytest

from dashboard.alerts.engine import announce_due, check_organization, evaluate_batch
from dashboard.extensions import db
from dashboard.models import Alert, AlertEvent
from tests import factories
from tests.alerting import T0, affected_ids, alerts, announced, log_batch, notifications, run, set_status

FAILING = "account_mapping_missing"
"""A record-level error: a connector-level one would hold rule 1 back."""


@pytest.fixture()
def rec(world):
    return factories.record(world.connector_a, record_type="mileage_claim", approved_at=T0 - timedelta(hours=2))


def fail(world, record, times, start=T0, code=FAILING):
    for i in range(times):
        run(world.connector_a, [(record, code)], at=start + timedelta(minutes=10 * i))


# Rule 1 ---------------------------------------------------------------------------------------------------

def test_third_consecutive_failure_alerts_org_admin_naming_type_and_error(world, rec):
    """Given a record that failed twice, when its third attempt fails, the org admin is alerted with type and error."""
    fail(world, rec, 2)
    assert alerts() == []
    fail(world, rec, 1, start=T0 + timedelta(hours=1))
    [alert] = alerts(rule="consecutive_failures")
    assert "mileage claim" in alert.title and "Account mapping missing" in alert.title
    [note] = notifications(world.admin_a)
    assert note.event == "raised" and note.title == alert.title
    assert notifications(world.admin_b) == [] and notifications(world.global_admin) == []
    assert alert.details["link"] == f"/orgs/org-a/integration?alert={alert.id}"
    assert affected_ids(alert) == {rec.id}


def test_records_crossing_with_same_type_and_error_share_one_alert(world, rec):
    """Given an open rule-1 alert, when another record of the same type and error crosses, it joins silently."""
    other = factories.record(world.connector_a, record_type="mileage_claim")
    fail(world, rec, 3)
    fail(world, other, 3, start=T0 + timedelta(hours=1))
    [alert] = alerts(rule="consecutive_failures")
    assert affected_ids(alert) == {rec.id, other.id}
    assert len(notifications(world.admin_a)) == 1
    assert "2 mileage claims" in alert.title


def test_different_error_code_makes_a_separate_alert(world, rec):
    other = factories.record(world.connector_a, record_type="mileage_claim")
    fail(world, rec, 3)
    fail(world, other, 3, start=T0 + timedelta(hours=1), code="invalid_vat_code")
    assert len(alerts(rule="consecutive_failures")) == 2


def test_two_failures_a_success_and_two_failures_raise_nothing(world, rec):
    fail(world, rec, 2)
    run(world.connector_a, [(rec, None)], at=T0 + timedelta(hours=1))
    fail(world, rec, 2, start=T0 + timedelta(hours=2))
    assert alerts() == []


def test_fourth_failure_raises_nothing_new(world, rec):
    fail(world, rec, 4)
    assert len(alerts()) == 1 and len(notifications()) == 1


# Rule 4: resolution ---------------------------------------------------------------------------------------

def test_successful_retry_sends_a_resolution_notification(world, rec):
    """Given a rule-1 alert, when its failed record is retried successfully, the org admin hears it is cleared."""
    fail(world, rec, 3)
    run(world.connector_a, [(rec, None)], at=T0 + timedelta(hours=1))
    [alert] = alerts()
    assert alert.status == "resolved" and alert.resolved_at is not None
    resolved = notifications(world.admin_a, event="resolved")
    assert len(resolved) == 1 and resolved[0].alert_id == alert.id


def test_partial_retry_sends_no_resolution(world, rec):
    other = factories.record(world.connector_a, record_type="mileage_claim")
    fail(world, rec, 3)
    fail(world, other, 3, start=T0 + timedelta(hours=1))
    run(world.connector_a, [(rec, None)], at=T0 + timedelta(hours=2))
    [alert] = alerts()
    assert alert.status == "open"
    assert notifications(event="resolved") == []


def test_an_alert_whose_records_are_synced_or_excluded_resolves(world, rec):
    """Given a rule-1 alert over two records, when one is synced and the other excluded, the alert resolves."""
    other = factories.record(world.connector_a, record_type=rec.record_type)
    fail(world, rec, 3)
    fail(world, other, 3, start=T0 + timedelta(minutes=10))
    run(world.connector_a, [(rec, None)], at=T0 + timedelta(hours=1))
    set_status(other, "excluded")
    check_organization(world.org_a.id, now=T0 + timedelta(hours=2))
    [alert] = alerts(rule="consecutive_failures")
    assert alert.status == "resolved"


def test_resolved_alert_never_reopens(world, rec):
    """Given a resolved alert, when the record crosses again, a new alert is raised."""
    fail(world, rec, 3)
    run(world.connector_a, [(rec, None)], at=T0 + timedelta(hours=1))
    fail(world, rec, 3, start=T0 + timedelta(hours=2))
    first, second = alerts()
    assert first.status == "resolved" and second.status == "open"


def test_resolution_skips_a_former_admin(world, rec, db):
    fail(world, rec, 3)
    for m in list(world.admin_a.memberships):
        db.session.delete(m)
    db.session.commit()
    run(world.connector_a, [(rec, None)], at=T0 + timedelta(hours=1))
    assert notifications(event="resolved") == []


# Rule 2 ---------------------------------------------------------------------------------------------------

def _many(world, n):
    return [factories.record(world.connector_a) for _ in range(n)]


def test_ten_failures_in_the_window_raise_nothing_and_the_eleventh_does(world):
    """Given 10 failures within 24 hours, when the 11th fails, org admins are alerted, and global admins
    through their platform summary of the grouping period."""
    records = _many(world, 11)
    run(world.connector_a, [(r, "validation_failed") for r in records[:10]], at=T0)
    assert alerts(rule="error_threshold") == []
    run(world.connector_a, [(records[10], "validation_failed")], at=T0 + timedelta(hours=23))
    [alert] = alerts(rule="error_threshold")
    assert len(affected_ids(alert)) == 11
    assert [n.event for n in notifications(world.admin_a) if n.alert_id == alert.id] == ["raised"]
    [summary] = announced(world.global_admin)
    assert summary.event == "summary" and summary.alert_id is None and "Organization A" in summary.title
    assert [(n.alert_id, n.gathered_into_id) for n in notifications(world.global_admin, "raised")] == [
        (alert.id, summary.id)]
    assert notifications(world.admin_b) == []


def test_failure_24h_and_1min_before_does_not_count(world):
    records = _many(world, 11)
    run(world.connector_a, [(records[0], "validation_failed")], at=T0)
    run(world.connector_a, [(r, "validation_failed") for r in records[1:]],
        at=T0 + timedelta(hours=24, minutes=1))
    assert alerts(rule="error_threshold") == []


def test_eleventh_in_one_batch_raises_and_later_ones_join(world):
    records = _many(world, 14)
    run(world.connector_a, [(r, "validation_failed") for r in records], at=T0)
    [alert] = alerts(rule="error_threshold")
    assert affected_ids(alert) == {r.id for r in records}


def test_resolved_threshold_alert_does_not_flap_while_window_is_full(world):
    """Given a resolved rule-2 alert and more than 10 failures in the window, the next failure raises nothing."""
    records = _many(world, 12)
    run(world.connector_a, [(r, "validation_failed") for r in records[:11]], at=T0)
    run(world.connector_a, [(r, None) for r in records[:11]], at=T0 + timedelta(hours=1))
    assert alerts(rule="error_threshold")[0].status == "resolved"
    run(world.connector_a, [(records[11], "validation_failed")], at=T0 + timedelta(hours=2))
    assert len(alerts(rule="error_threshold")) == 1


# Rule 3 ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("age, raises", [(timedelta(hours=47, minutes=59), False), (timedelta(hours=48), False),
                                         (timedelta(hours=48, minutes=1), True)])
def test_staleness_boundary(world, age, raises):
    """Given a record approved `age` ago and never synced, the stale rule fires only past 48 hours
    (47 h 59 min and exactly 48 h are not stale)."""
    factories.record(world.connector_a, approved_at=T0 - age)
    db.session.commit()
    check_organization(world.org_a.id, now=T0)
    stale = alerts(rule="stale_sync")
    assert bool(stale) is raises
    if raises:
        assert stale[0].details["link"].startswith("/orgs/org-a/integration?alert=")
        assert "never synced" in stale[0].body
        assert len(notifications(world.admin_a)) == 1


@pytest.mark.parametrize("status, raises", [("pending", True), ("failed", True), ("synced", False),
                                            ("excluded", False)])
def test_only_waiting_records_can_be_stale(world, status, raises):
    """Given a record approved 3 days ago, it is stale only while it waits (pending or failed)."""
    factories.record(world.connector_a, approved_at=T0 - timedelta(days=3), status=status)
    db.session.commit()
    check_organization(world.org_a.id, now=T0)
    assert bool(alerts(rule="stale_sync")) is raises


def test_disabled_connector_raises_nothing(world):
    world.connector_a.enabled = False
    factories.record(world.connector_a, approved_at=T0 - timedelta(days=5))
    db.session.commit()
    check_organization(world.org_a.id, now=T0)
    assert alerts() == []


def test_records_passing_48h_while_open_join_the_stale_alert(world):
    first = factories.record(world.connector_a, approved_at=T0 - timedelta(hours=49))
    second = factories.record(world.connector_a, approved_at=T0 - timedelta(hours=47))
    db.session.commit()
    check_organization(world.org_a.id, now=T0)
    check_organization(world.org_a.id, now=T0 + timedelta(hours=2))
    [alert] = alerts(rule="stale_sync")
    assert affected_ids(alert) == {first.id, second.id}
    assert len(notifications(world.admin_a)) == 1


# Rule 5 ---------------------------------------------------------------------------------------------------

def test_two_organizations_alerting_make_one_platform_alert(world):
    """Given two organizations with a rule-1 alert each, global admins get one platform alert naming both."""
    a = factories.record(world.connector_a)
    b = factories.record(world.connector_b)
    fail(world, a, 3)
    for i in range(3):
        run(world.connector_b, [(b, FAILING)], at=T0 + timedelta(minutes=10 * i))
    [platform] = alerts(rule="platform_incident")
    assert "Organization A" in platform.title and "Organization B" in platform.title
    assert [n.alert_id for n in notifications(world.global_admin)] == [platform.id]
    assert platform.details["link"] == "/platform"


def test_platform_alert_resolves_when_no_organization_alerts(world):
    a = factories.record(world.connector_a)
    b = factories.record(world.connector_b)
    fail(world, a, 3)
    for i in range(3):
        run(world.connector_b, [(b, FAILING)], at=T0 + timedelta(minutes=10 * i))
    run(world.connector_a, [(a, None)], at=T0 + timedelta(hours=1))
    assert alerts(rule="platform_incident")[0].status == "open"
    run(world.connector_b, [(b, None)], at=T0 + timedelta(hours=1))
    assert alerts(rule="platform_incident")[0].status == "resolved"
    assert [n.event for n in notifications(world.global_admin)] == ["raised", "resolved"]


def test_alert_resolved_within_grouping_wait_reaches_no_global_admin(world):
    """Given a 60 s grouping wait, when a rule-2 alert resolves within it, global admins hear nothing."""
    factories.platform(grouping_wait_seconds=60)
    db.session.commit()
    records = _many(world, 11)
    run(world.connector_a, [(r, "validation_failed") for r in records], at=T0)
    assert notifications(world.global_admin) == []
    run(world.connector_a, [(r, None) for r in records], at=T0 + timedelta(seconds=30))
    announce_due(T0 + timedelta(minutes=5))
    db.session.commit()
    assert notifications(world.global_admin) == []
    assert len(notifications(world.admin_a)) == 2


def test_threshold_alert_reaches_global_admins_after_the_wait(world):
    factories.platform(grouping_wait_seconds=60)
    db.session.commit()
    records = _many(world, 11)
    run(world.connector_a, [(r, "validation_failed") for r in records], at=T0)
    announce_due(T0 + timedelta(seconds=30))
    db.session.commit()
    assert notifications(world.global_admin) == []
    announce_due(T0 + timedelta(seconds=75))
    db.session.commit()
    assert [n.event for n in announced(world.global_admin)] == ["summary"]


# Exactly once ---------------------------------------------------------------------------------------------

def test_evaluating_a_batch_twice_changes_nothing(world, rec):
    for i in range(3):
        batch_id = run(world.connector_a, [(rec, FAILING)], at=T0 + timedelta(minutes=10 * i))
    before = (len(alerts()), len(notifications()), db.session.query(AlertEvent).count())
    assert evaluate_batch(batch_id, T0 + timedelta(hours=1)) is False
    assert (len(alerts()), len(notifications()), db.session.query(AlertEvent).count()) == before


def test_out_of_order_evaluation_raises_once(world, rec):
    """Given batches holding a record's 3rd and 4th failures, evaluating the 4th first still raises one alert."""
    run(world.connector_a, [(rec, FAILING)], at=T0)
    run(world.connector_a, [(rec, FAILING)], at=T0 + timedelta(minutes=10))
    third = log_batch(world.connector_a, [(rec, FAILING)], at=T0 + timedelta(minutes=20))
    fourth = log_batch(world.connector_a, [(rec, FAILING)], at=T0 + timedelta(minutes=30))
    evaluate_batch(fourth, T0 + timedelta(minutes=31))
    assert alerts() == []
    evaluate_batch(third, T0 + timedelta(minutes=32))
    assert len(alerts()) == 1 and len(notifications()) == 1
    assert db.session.query(Alert).filter_by(status="open").count() == 1


def test_a_platform_alert_over_many_organizations_keeps_a_title_the_database_holds(world, db):
    """Given 14 organizations alerting at once (found on PostgreSQL: the title outgrew its 300-character column),
    the platform alert's title names three and counts the rest, and its text names them all."""
    from dashboard.models import Alert as AlertModel

    for n in range(14):
        org = factories.org(f"many-{n:02d}", name=f"Frivillighetsorganisasjonen nummer {n:02d}")
        factories.record(factories.connector(org), approved_at=T0 - timedelta(days=3))
        db.session.commit()
        check_organization(org.id, now=T0)
    [platform] = alerts(rule="platform_incident")
    assert len(platform.title) <= AlertModel.title.type.length
    assert platform.title.endswith("and 11 more")
    assert "nummer 13" in platform.body
