"""Quiet under real traffic (issue 17): re-arming the error threshold, flapping, short-lived alerts, the daily
budget and global admins' platform summaries, against a real database."""
from datetime import timedelta

import pytest

from dashboard.alerts.engine import announce_due
from dashboard.extensions import db
from dashboard.models import AlertEvent, AlertRecord, SyncRecord
from tests import factories
from tests.alerting import T0, alerts, announced, notifications, run

FAILING = "account_mapping_missing"
M = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.fixture()
def rec(world):
    world.org_a.error_threshold = 100  # rule 1 alone: the cycles' failures would cross rule 2's threshold
    db.session.commit()
    return factories.record(world.connector_a, record_type="mileage_claim", approved_at=T0 - 2 * H)


def cycle(world, record, start):
    """Three failures ten minutes apart (rule 1 raises), then a success an hour later (it resolves)."""
    for i in range(3):
        run(world.connector_a, [(record, FAILING)], at=start + 10 * M * i)
    run(world.connector_a, [(record, None)], at=start + H)


def threshold_burst(world, records, at):
    run(world.connector_a, [(r, "validation_failed") for r in records], at=at)


def retry_all(world, records, at):
    run(world.connector_a, [(r, None) for r in records], at=at)


# Re-arming the error threshold ---------------------------------------------------------------------------

def test_after_a_threshold_alert_resolves_a_count_still_above_the_rearm_level_raises_nothing(world):
    """Given an error-threshold alert resolved by retries while 11 failures are still in the window,
    when one more failure comes, no second alert is raised (the drip's up-and-down no longer re-alerts)."""
    records = [factories.record(world.connector_a) for _ in range(12)]
    threshold_burst(world, records[:11], T0)
    retry_all(world, records[:11], T0 + H)
    [first] = alerts(rule="error_threshold")
    assert first.status == "resolved"
    threshold_burst(world, records[11:], T0 + 2 * H)
    assert len(alerts(rule="error_threshold")) == 1


def test_once_the_count_has_fallen_to_the_rearm_level_the_next_crossing_alerts_at_once(world):
    """Given a resolved threshold alert, when the window's failures fall to half the threshold and 11 fail
    again, a new alert opens at that crossing and the admins are told."""
    first_wave = [factories.record(world.connector_a) for _ in range(11)]
    threshold_burst(world, first_wave, T0)
    retry_all(world, first_wave, T0 + H)
    second_wave = [factories.record(world.connector_a) for _ in range(11)]
    threshold_burst(world, second_wave, T0 + 25 * H)
    raised = alerts(rule="error_threshold")
    assert [a.status for a in raised] == ["resolved", "open"]
    assert raised[1].opened_at <= T0 + 25 * H + M
    assert len([n for n in announced(world.admin_a) if n.alert_id == raised[1].id]) == 1


def test_a_rearm_level_of_zero_waits_for_a_window_without_failures(world):
    world.org_a.error_rearm_level = 0
    db.session.commit()
    first_wave = [factories.record(world.connector_a) for _ in range(11)]
    threshold_burst(world, first_wave, T0)
    retry_all(world, first_wave, T0 + H)
    drip = [factories.record(world.connector_a) for _ in range(11)]
    threshold_burst(world, drip[:1], T0 + 20 * H)
    threshold_burst(world, drip[1:], T0 + 30 * H)
    assert len(alerts(rule="error_threshold")) == 1, "a failure 20 h in kept the window from emptying"


# Flapping ------------------------------------------------------------------------------------------------

def test_the_third_raise_within_a_day_is_told_once_as_keeps_coming_back(world, rec):
    """Given a record whose rule-1 alert was raised and resolved twice today, when it is raised a third
    time, its admin gets one "keeps coming back: 3 times since …" notification, not a third "raised"."""
    for n in range(3):
        cycle(world, rec, T0 + 3 * H * n)
    raised = alerts(rule="consecutive_failures")
    assert [a.flapping for a in raised] == [False, False, True]
    tells = [(n.event, n.alert_id) for n in announced(world.admin_a)]
    assert tells == [("raised", raised[0].id), ("resolved", raised[0].id), ("raised", raised[1].id),
                     ("resolved", raised[1].id), ("flapping", raised[2].id)]
    flap = announced(world.admin_a)[-1]
    assert flap.title.startswith("Keeps coming back: 3 times since 13:20.")  # the first raise: 12:20 UTC


def test_while_flapping_raises_and_resolutions_are_gathered_listed_and_not_announced(world, rec):
    for n in range(5):
        cycle(world, rec, T0 + 3 * H * n)
    raised = alerts(rule="consecutive_failures")
    assert len(raised) == 5 and all(a.status == "resolved" for a in raised)
    flap = [n for n in announced(world.admin_a) if n.event == "flapping"]
    assert len(flap) == 1
    gathered = [n for n in notifications(world.admin_a) if n.gathered_into_id == flap[0].id]
    assert [(n.event, n.alert_id) for n in gathered] == [
        ("resolved", raised[2].id), ("raised", raised[3].id), ("resolved", raised[3].id),
        ("raised", raised[4].id), ("resolved", raised[4].id)]
    assert "5 times since" in flap[0].title
    assert db.session.query(AlertEvent).filter_by(kind="gathered").count() == 5


def test_after_staying_resolved_for_the_quiet_period_it_is_announced_again(world, rec):
    for n in range(3):
        cycle(world, rec, T0 + 3 * H * n)
    cycle(world, rec, T0 + 6 * H + H + 13 * H)
    last = alerts(rule="consecutive_failures")[-1]
    assert last.flapping is False
    assert [n.event for n in announced(world.admin_a) if n.alert_id == last.id] == ["raised", "resolved"]


# Short-lived alerts ----------------------------------------------------------------------------------------

def test_an_alert_resolved_within_minutes_is_shown_but_not_announced_twice(world, rec):
    for i in range(3):
        run(world.connector_a, [(rec, FAILING)], at=T0 + 10 * M * i)
    run(world.connector_a, [(rec, None)], at=T0 + 23 * M)
    [alert] = alerts()
    raise_note, resolution = notifications(world.admin_a)
    assert (raise_note.event, raise_note.gathered_into_id) == ("raised", None)
    assert (resolution.event, resolution.gathered_into_id) == ("resolved", raise_note.id)
    assert alert.status == "resolved"


def test_an_alert_resolved_later_announces_its_resolution(world, rec):
    for i in range(3):
        run(world.connector_a, [(rec, FAILING)], at=T0 + 10 * M * i)
    run(world.connector_a, [(rec, None)], at=T0 + 40 * M)
    assert [n.event for n in announced(world.admin_a)] == ["raised", "resolved"]


# The daily budget ------------------------------------------------------------------------------------------

def _raise_distinct_alerts(world, count, start, gap=2 * H, first=0):
    """`count` rule-1 alerts of different record types and errors (the `first`th kind on), never resolved."""
    codes = ["account_mapping_missing", "invalid_vat_code", "validation_failed", "missing_fields"]
    types = ["mileage_claim", "expense_claim", "reimbursement_payment"]
    for n in range(first, first + count):
        record = factories.record(world.connector_a, record_type=types[n % 3])
        for i in range(3):
            run(world.connector_a, [(record, codes[(n // 3) % 4])], at=start + gap * (n - first) + M * i)


def test_past_the_budget_an_admin_gets_one_summary_and_nothing_is_dropped(world):
    """Given a budget of 3 a day, when 6 alerts are raised in one day, the admin is announced 2 of them and
    one summary that gathers the other 4; the tray still lists all 6."""
    world.org_a.daily_notification_budget = 3
    world.org_a.error_threshold = 100
    db.session.commit()
    _raise_distinct_alerts(world, 6, T0 - 11 * H)
    pushed = announced(world.admin_a)
    assert [n.event for n in pushed] == ["raised", "raised", "summary"]
    summary = pushed[-1]
    assert summary.digest_key == f"org:{world.org_a.id}:2026-11-20" and summary.alert_id is None
    assert len([n for n in notifications(world.admin_a) if n.gathered_into_id == summary.id]) == 4
    assert "4 more alert events today" in summary.title
    assert len(notifications(world.admin_a, "raised")) == 6


def test_the_budget_starts_afresh_on_the_organizations_next_day(world):
    world.org_a.daily_notification_budget = 2
    world.org_a.error_threshold = 100
    db.session.commit()
    _raise_distinct_alerts(world, 3, T0 - 11 * H)   # 01:00–05:00 Oslo time on the 20th
    _raise_distinct_alerts(world, 1, T0 + 12 * H + 30 * M, first=3)  # 01:30 on the 21st
    assert [n.event for n in announced(world.admin_a)] == ["raised", "summary", "raised"]


# Global admins: one platform summary per grouping period ---------------------------------------------------

def _threshold_alert(world, connector, at):
    records = [factories.record(connector) for _ in range(11)]
    run(connector, [(r, "validation_failed") for r in records], at=at)


def test_threshold_alerts_due_within_one_grouping_period_reach_global_admins_as_one_summary(world):
    factories.platform(grouping_wait_seconds=300, incident_min_organizations=3)
    db.session.commit()
    _threshold_alert(world, world.connector_a, T0)
    _threshold_alert(world, world.connector_b, T0 + M)
    announce_due(T0 + 6 * M)
    announce_due(T0 + 7 * M)
    db.session.commit()
    [summary] = announced(world.global_admin)
    assert summary.event == "summary"
    assert summary.title == "Error threshold crossed at Organization A, Organization B"
    assert len([n for n in notifications(world.global_admin) if n.gathered_into_id == summary.id]) == 2


def test_a_threshold_alert_in_a_later_period_makes_a_second_summary_and_resolutions_are_gathered(world):
    factories.platform(grouping_wait_seconds=300, incident_min_organizations=3)
    db.session.commit()
    _threshold_alert(world, world.connector_a, T0)
    announce_due(T0 + 6 * M)
    db.session.commit()
    _threshold_alert(world, world.connector_b, T0 + 2 * H)
    announce_due(T0 + 2 * H + 6 * M)
    db.session.commit()
    assert [n.event for n in announced(world.global_admin)] == ["summary", "summary"]
    first = alerts(rule="error_threshold")[0]
    record_ids = [r.record_id for r in db.session.query(AlertRecord).filter_by(alert_id=first.id)]
    retry_all(world, db.session.query(SyncRecord).filter(SyncRecord.id.in_(record_ids)).all(), T0 + 3 * H)
    assert alerts(rule="error_threshold")[0].status == "resolved"
    assert len(announced(world.global_admin)) == 2
    [resolution] = notifications(world.global_admin, "resolved")
    assert resolution.gathered_into_id == announced(world.global_admin)[0].id


# In the tray ---------------------------------------------------------------------------------------------

def test_the_tray_lists_gathered_notifications_counts_only_the_summary_and_reads_them_with_it(world, login):
    """Given a summary that gathered 4 notifications, the unread count is the announced ones; opening the
    summary goes to the organization's alerts and marks what it gathered read."""
    world.org_a.daily_notification_budget = 3
    world.org_a.error_threshold = 100
    db.session.commit()
    _raise_distinct_alerts(world, 6, T0 - 11 * H)
    summary = announced(world.admin_a)[-1]
    client = login(world.admin_a)
    page = client.get("/notifications").get_data(as_text=True)
    assert "3 unread notifications." in page
    assert page.count("Gathered into a summary, not announced") == 4
    assert "Summary:" in page and summary.title in page
    response = client.get(f"/notifications/{summary.id}")
    assert response.status_code == 302 and response.headers["Location"] == "/orgs/org-a/alerts"
    db.session.expire_all()
    assert all(n.read_at is not None for n in notifications(world.admin_a) if n.gathered_into_id == summary.id)


def test_a_platform_summary_opens_the_platform_page(world, login):
    factories.platform(grouping_wait_seconds=300, incident_min_organizations=3)
    db.session.commit()
    _threshold_alert(world, world.connector_a, T0)
    announce_due(T0 + 6 * M)
    db.session.commit()
    [summary] = announced(world.global_admin)
    response = login(world.global_admin).get(f"/notifications/{summary.id}")
    assert response.headers["Location"] == "/platform"


def test_another_users_summary_is_not_found(world, login):
    world.org_a.daily_notification_budget = 1
    world.org_a.error_threshold = 100
    db.session.commit()
    _raise_distinct_alerts(world, 1, T0)
    [summary] = announced(world.admin_a)
    assert summary.event == "summary"
    assert login(world.admin_b).get(f"/notifications/{summary.id}").status_code == 404
