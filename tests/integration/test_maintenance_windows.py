"""Maintenance windows against the real database and alert engine: what they mute, what their end reminds of,
and the settings page that lists, creates and ends them (issue 12, item 5)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from dashboard.alerts import engine
from dashboard.extensions import db
from dashboard.models import AlertEvent, MaintenanceWindow, utcnow
from tests import factories
from tests.alerting import T0, alerts, notifications, run, writing

pytestmark = pytest.mark.db

LOCKED, EXPIRED, UNAVAILABLE = "period_locked", "credentials_expired", "system_unavailable"
H, M = timedelta(hours=1), timedelta(minutes=1)
PAGE = "/orgs/org-a/settings/maintenance"


def window(organization, starts_at=T0 - H, ends_at=T0 + 2 * H, codes=(), types=(), reason="Month-end closing",
           by=None) -> MaintenanceWindow:
    made = MaintenanceWindow(organization_id=organization.id, starts_at=starts_at, ends_at=ends_at,
                             error_codes=list(codes), record_types=list(types), reason=reason,
                             created_by_id=by.id if by else None, created_at=starts_at)
    db.session.add(made)
    db.session.commit()
    return made


def scan(now: datetime) -> None:
    with writing():
        engine.scan(now)


@pytest.fixture()
def record_a(world):
    made = factories.record(world.connector_a, approved_at=T0 - 2 * H)
    db.session.commit()
    return made


@pytest.fixture()
def record_b(world):
    made = factories.record(world.connector_b, approved_at=T0 - 2 * H)
    db.session.commit()
    return made


# Muting ----------------------------------------------------------------------------------------------------

def test_an_alert_raised_in_a_matching_window_notifies_nobody_shows_muted_and_makes_no_incident(
        world, record_a, record_b):
    """Given org A's window for period_locked, when org A's period lock and org B's outage raise alerts,
    org A's alert notifies nobody and is marked muted, and the two organizations make no platform incident."""
    held = window(world.org_a, codes=(LOCKED,))
    run(world.connector_a, [(record_a, LOCKED)], at=T0)
    run(world.connector_b, [(record_b, UNAVAILABLE)], at=T0 + M)

    [alert] = alerts(organization_id=world.org_a.id)
    assert alert.status == "open" and alert.muted_by_window_id == held.id
    assert [n for n in notifications() if n.alert_id == alert.id] == []
    assert db.session.scalar(sa.select(AlertEvent.detail).where(AlertEvent.alert_id == alert.id,
                                                                AlertEvent.kind == "muted")) \
        == f"maintenance window {held.id}"
    assert alerts(rule="platform_incident") == []


def test_an_alert_with_another_code_is_notified_as_usual(world, record_a):
    window(world.org_a, codes=(LOCKED,))
    run(world.connector_a, [(record_a, EXPIRED)], at=T0)
    [alert] = alerts()
    assert alert.muted_by_window_id is None
    assert [(n.user_id, n.event) for n in notifications()] == [(world.admin_a.id, "raised")]


def test_a_window_of_another_organization_mutes_nothing_here(world, record_a):
    window(world.org_b)
    run(world.connector_a, [(record_a, LOCKED)], at=T0)
    assert [n.user_id for n in notifications()] == [world.admin_a.id]


# The window's end ------------------------------------------------------------------------------------------

def test_at_the_windows_end_an_alert_still_open_reminds_its_admins_once_and_counts_again(
        world, record_a, record_b):
    """Given a muted alert still open when its window ends, when the scan runs (twice), org A's admin gets one
    "reminded" notification, the alert counts again, and with org B's alert the platform incident opens."""
    held = window(world.org_a, codes=(LOCKED,))
    run(world.connector_a, [(record_a, LOCKED)], at=T0)
    run(world.connector_b, [(record_b, UNAVAILABLE)], at=T0 + M)
    [alert] = alerts(organization_id=world.org_a.id)

    scan(T0 + 2 * H + M)
    scan(T0 + 2 * H + 2 * M)

    db.session.expire_all()
    reminders = [n for n in notifications(event="reminded") if n.alert_id == alert.id]
    assert [n.user_id for n in reminders] == [world.admin_a.id]
    assert reminders[0].title == f"Still open after the maintenance window: {alert.title}"
    assert alert.muted_by_window_id is None
    assert db.session.get(MaintenanceWindow, held.id).closed_at == T0 + 2 * H + M
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AlertEvent).where(
        AlertEvent.alert_id == alert.id, AlertEvent.kind == "reminded")) == 1
    [platform] = alerts(rule="platform_incident")
    assert platform.status == "open"


def test_an_alert_resolved_inside_the_window_is_never_told_to_anyone(world, record_a):
    window(world.org_a, codes=(LOCKED,))
    run(world.connector_a, [(record_a, LOCKED)], at=T0)
    run(world.connector_a, [(record_a, None)], at=T0 + H)
    assert alerts()[0].status == "resolved"

    scan(T0 + 2 * H + M)

    assert notifications() == []


# The page --------------------------------------------------------------------------------------------------

def _form(start: str, end: str, **extra) -> dict:
    return {"starts_at": start, "ends_at": end, "reason": "Month-end closing", **extra}


def _local(moment: datetime) -> str:
    """A naive UTC time as typed in Oslo in winter (UTC+1), the organizations' time zone here."""
    return (moment + H).strftime("%Y-%m-%dT%H:%M")


def test_an_admin_creates_a_window_in_the_organizations_time_zone_and_sees_it_listed(world, login):
    client = login(world.admin_a)
    start = utcnow().replace(second=0, microsecond=0) + H
    response = client.post(PAGE, data=_form(_local(start), _local(start + 3 * H), error_codes=[LOCKED],
                                            record_types=["expense_claim"]))
    assert response.status_code == 302
    [made] = db.session.scalars(sa.select(MaintenanceWindow)).all()
    assert (made.starts_at, made.ends_at) == (start, start + 3 * H)
    assert (made.error_codes, made.record_types, made.created_by_id) == ([LOCKED], ["expense_claim"],
                                                                         world.admin_a.id)
    page = client.get(PAGE).get_data(as_text=True)
    assert "Month-end closing" in page and "Upcoming" in page and world.admin_a.name in page


@pytest.mark.parametrize("start_h, end_h, message", [
    (2, 1, "must be after the start"),
    (2, 2, "must be after the start"),
    (-3, -1, "has passed already"),
])
def test_a_window_whose_end_is_not_after_its_start_or_has_passed_is_refused_and_nothing_saved(
        world, login, start_h, end_h, message):
    client = login(world.admin_a)
    now = utcnow().replace(second=0, microsecond=0)
    response = client.post(PAGE, data=_form(_local(now + start_h * H), _local(now + end_h * H)))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MaintenanceWindow)) == 0


def test_a_window_overlapping_another_for_the_same_codes_is_refused_naming_it(world, login):
    now = utcnow().replace(second=0, microsecond=0)
    window(world.org_a, starts_at=now, ends_at=now + 4 * H, codes=(LOCKED,), reason="Closing November")
    client = login(world.admin_a)

    refused = client.post(PAGE, data=_form(_local(now + H), _local(now + 5 * H), error_codes=[LOCKED, EXPIRED]))
    accepted = client.post(PAGE, data=_form(_local(now + H), _local(now + 5 * H), error_codes=[EXPIRED]))

    assert refused.status_code == 422
    assert "overlaps the window “Closing November”" in refused.get_data(as_text=True)
    assert accepted.status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MaintenanceWindow)) == 2


def test_a_missing_or_garbled_time_is_refused_with_what_to_enter(world, login):
    response = login(world.admin_a).post(PAGE, data=_form("", "tomorrow"))
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Enter when the window starts, as a date and a time." in text
    assert "Enter when the window ends, as a date and a time." in text


def test_ending_an_open_window_now_reminds_of_its_open_alerts_at_once_and_records_who(world, login):
    now = utcnow().replace(microsecond=0)
    held = window(world.org_a, starts_at=now - H, ends_at=now + H)
    record = factories.record(world.connector_a, approved_at=now - H)
    run(world.connector_a, [(record, LOCKED)], at=now - M, now=now - M)
    client = login(world.admin_a)

    response = client.post(f"{PAGE}/{held.id}/end")

    assert response.status_code == 302
    db.session.expire_all()
    ended = db.session.get(MaintenanceWindow, held.id)
    assert ended.ended_by_id == world.admin_a.id and ended.ends_at <= utcnow() and ended.closed_at is not None
    assert [(n.user_id, n.event) for n in notifications()] == [(world.admin_a.id, "reminded")]
    assert "ended early by" in client.get(PAGE).get_data(as_text=True)


def test_cancelling_an_upcoming_window_removes_it(world, login):
    now = utcnow()
    upcoming = window(world.org_a, starts_at=now + H, ends_at=now + 2 * H)
    assert login(world.admin_a).post(f"{PAGE}/{upcoming.id}/end").status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MaintenanceWindow)) == 0


def test_another_organizations_admin_gets_404_for_the_page_and_its_windows(world, login):
    """Given org A's open window, org B's admin gets 404 for org A's page and for ending the window, through
    org A's address or their own; the window is unchanged."""
    now = utcnow()
    held = window(world.org_a, starts_at=now - H, ends_at=now + H)
    client = login(world.admin_b)
    assert client.get(PAGE).status_code == 404
    assert client.post(PAGE, data=_form(_local(now), _local(now + H))).status_code == 404
    assert client.post(f"{PAGE}/{held.id}/end").status_code == 404
    assert client.post(f"/orgs/org-b/settings/maintenance/{held.id}/end").status_code == 404
    db.session.expire_all()
    assert db.session.get(MaintenanceWindow, held.id).ends_at == held.ends_at
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MaintenanceWindow)) == 1


def test_a_global_admin_may_manage_any_organizations_windows(world, login):
    assert login(world.global_admin).get(PAGE).status_code == 200


def test_the_platform_incident_itself_is_never_muted(world, record_a, record_b):
    """Given org B's open alert and org A's alert held back by a window covering everything, when the window
    ends, the platform incident opens and is announced to the global admin at once, as usual."""
    window(world.org_a)
    run(world.connector_b, [(record_b, UNAVAILABLE)], at=T0)
    run(world.connector_a, [(record_a, EXPIRED)], at=T0 + M)
    assert alerts(rule="platform_incident") == []

    scan(T0 + 2 * H + M)

    [platform] = alerts(rule="platform_incident")
    assert platform.muted_by_window_id is None
    assert [n.event for n in notifications(world.global_admin) if n.alert_id == platform.id] == ["raised"]
