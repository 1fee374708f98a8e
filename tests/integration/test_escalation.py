"""Escalation and snooze reminders against the real database and alert engine (issue 12, items 5 to 7): the
minute scan escalates an alert nobody acknowledged once, folds it into the open platform incident for global
admins, and reminds once when a snooze ends; a second scan, or a racing one, adds nothing."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from dashboard.alerts import engine
from dashboard.database import writer
from dashboard.extensions import db
from dashboard.models import AlertEvent, MaintenanceWindow, Notification, PlatformSettings
from tests import factories
from tests.alerting import T0, alerts, notifications, run, writing

pytestmark = pytest.mark.db

EXPIRED, UNAVAILABLE = "credentials_expired", "system_unavailable"
H, M = timedelta(hours=1), timedelta(minutes=1)


def scan(now: datetime) -> None:
    with writing():
        engine.scan(now)


def escalations(alert) -> list[Notification]:  # type: ignore[no-untyped-def]
    db.session.expire_all()
    return [n for n in notifications(event="escalated") if n.alert_id == alert.id]


def events(alert, kind: str) -> int:  # type: ignore[no-untyped-def]
    return db.session.scalar(sa.select(sa.func.count()).select_from(AlertEvent)
                             .where(AlertEvent.alert_id == alert.id, AlertEvent.kind == kind)) or 0


@pytest.fixture()
def alert_a(world):
    """Org A's credentials expired at T0: an open connector alert its admin was told of."""
    record = factories.record(world.connector_a, approved_at=T0 - 2 * H)
    db.session.commit()
    run(world.connector_a, [(record, EXPIRED)], at=T0)
    [alert] = alerts(organization_id=world.org_a.id)
    return alert


# Escalation ------------------------------------------------------------------------------------------------

def test_an_alert_open_and_unacknowledged_past_the_escalation_time_escalates_once_to_global_and_org_admins(
        world, alert_a):
    scan(T0 + 23 * H)
    assert escalations(alert_a) == []

    scan(T0 + 26 * H + M)
    scan(T0 + 27 * H)

    told = escalations(alert_a)
    assert sorted(n.user_id for n in told) == sorted([world.admin_a.id, world.global_admin.id])
    assert all(n.gathered_into_id is None for n in told)
    assert told[0].title == f"Escalated: open for 26 hours and nobody has acknowledged it: {alert_a.title}"
    assert alert_a.escalated_at == T0 + 26 * H + M
    assert events(alert_a, "escalated") == 1


def test_the_escalation_time_is_the_platform_setting(world, alert_a):
    db.session.get(PlatformSettings, 1).escalation_hours = 2
    db.session.commit()
    scan(T0 + 3 * H)
    assert len(escalations(alert_a)) == 2


def test_while_a_platform_incident_is_open_global_admins_hear_of_escalations_through_it(world, alert_a):
    """Given org A's and org B's alerts making an open platform incident the global admin was told of, when
    both escalate, the global admin's escalations are gathered into that notification; each org's admin is
    told on their own."""
    record_b = factories.record(world.connector_b, approved_at=T0 - 2 * H)
    db.session.commit()
    run(world.connector_b, [(record_b, UNAVAILABLE)], at=T0 + M)
    [platform] = alerts(rule="platform_incident")
    [incident] = [n for n in notifications(world.global_admin) if n.alert_id == platform.id]
    [alert_b] = alerts(organization_id=world.org_b.id)

    scan(T0 + 25 * H)

    for alert, admin in ((alert_a, world.admin_a), (alert_b, world.admin_b)):
        told = {n.user_id: n for n in escalations(alert)}
        assert set(told) == {admin.id, world.global_admin.id}
        assert told[world.global_admin.id].gathered_into_id == incident.id
        assert told[admin.id].gathered_into_id is None


def test_an_acknowledged_alert_is_never_escalated(world, alert_a):
    alert_a.acknowledged_at, alert_a.acknowledged_by_id = T0 + H, world.admin_a.id
    db.session.commit()
    scan(T0 + 25 * H)
    scan(T0 + 100 * H)
    assert escalations(alert_a) == [] and alert_a.escalated_at is None


def test_a_stale_alert_escalates_the_same_way(world):
    factories.record(world.connector_a, approved_at=T0 - 50 * H)
    db.session.commit()
    scan(T0)
    [stale] = alerts(rule="stale_sync")
    scan(T0 + 25 * H)
    assert sorted(n.user_id for n in escalations(stale)) == sorted([world.admin_a.id, world.global_admin.id])


def test_an_alert_a_window_still_holds_back_waits_for_the_windows_end(world):
    db.session.add(MaintenanceWindow(organization_id=world.org_a.id, starts_at=T0 - H, ends_at=T0 + 30 * H))
    record = factories.record(world.connector_a, approved_at=T0 - 2 * H)
    db.session.commit()
    run(world.connector_a, [(record, EXPIRED)], at=T0)
    [alert] = alerts()
    scan(T0 + 25 * H)
    assert escalations(alert) == []
    scan(T0 + 30 * H + M)
    assert len(escalations(alert)) == 2
    assert [n.user_id for n in notifications(event="reminded")] == [world.admin_a.id]


def test_two_scans_racing_escalate_and_notify_once(app, world, alert_a):
    """Given an alert due for escalation, when two scans run at once on two connections, it is escalated once
    and each person is told once."""
    db.session.commit()
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def racing_scan() -> None:
        with app.app_context(), writer():
            try:
                barrier.wait()
                engine.scan(T0 + 25 * H)
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                failures.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=racing_scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert len(escalations(alert_a)) == 2
    assert events(alert_a, "escalated") == 1


# Snooze end ------------------------------------------------------------------------------------------------

def test_when_a_snooze_ends_on_an_open_alert_its_admins_are_reminded_once(world, alert_a):
    alert_a.snoozed_until, alert_a.snoozed_by_id = T0 + 2 * H, world.admin_a.id
    db.session.commit()
    scan(T0 + H)
    assert notifications(event="reminded") == []

    scan(T0 + 2 * H + M)
    scan(T0 + 2 * H + 2 * M)

    db.session.expire_all()
    [reminder] = notifications(event="reminded")
    assert reminder.user_id == world.admin_a.id
    assert reminder.title == f"Still open after its snooze: {alert_a.title}"
    assert alert_a.snoozed_until is None and events(alert_a, "reminded") == 1


def test_a_snooze_ending_on_a_resolved_alert_reminds_nobody_and_is_cleared(world, alert_a):
    alert_a.snoozed_until = T0 + 2 * H
    db.session.commit()
    run(world.connector_a, [(factories.record(world.connector_a), None)], at=T0 + H)
    assert alerts(organization_id=world.org_a.id)[0].status == "resolved"
    scan(T0 + 3 * H)
    db.session.expire_all()
    assert notifications(event="reminded") == [] and alert_a.snoozed_until is None


def test_a_snoozed_alert_escalates_only_once_its_snooze_has_ended(world, alert_a):
    alert_a.snoozed_until = T0 + 30 * H
    db.session.commit()
    scan(T0 + 25 * H)
    assert escalations(alert_a) == []
    scan(T0 + 30 * H + M)
    assert len(escalations(alert_a)) == 2


# Platform settings -----------------------------------------------------------------------------------------

SETTINGS = {"incident_min_organizations": "2", "grouping_wait_seconds": "0"}


def test_a_global_admin_sets_the_escalation_time(world, login):
    client = login(world.global_admin)
    assert client.post("/platform/settings", data={**SETTINGS, "escalation_hours": "36"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(PlatformSettings, 1).escalation_hours == 36


@pytest.mark.parametrize("value", ["0", "721", "", "a day"])
def test_an_escalation_time_outside_1_to_720_hours_is_refused_and_nothing_saved(world, login, value):
    response = login(world.global_admin).post("/platform/settings", data={**SETTINGS, "escalation_hours": value})
    assert response.status_code == 422
    assert "Enter the escalation time as a whole number of hours from 1 to 720." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(PlatformSettings, 1).escalation_hours == 24
