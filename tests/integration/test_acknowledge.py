"""Acknowledging and snoozing an alert: who may, what is recorded and shown, what is refused (issue 12, items 4-5)."""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dashboard.alerts import acknowledge as handling
from dashboard.extensions import db, redis_ext
from dashboard.models import Alert, AlertEvent, MaintenanceWindow, Notification, utcnow
from dashboard.vocabulary import AlertEventKind
from dashboard.web.alert_action_forms import snooze_end
from tests import factories
from tests.alerting import T0, affected_ids, alerts, notifications, run
from tests import status_factories as sf
from tests.status_factories import HTMX

ACTIONS = ("acknowledge", "snooze", "unsnooze")


def url(org_slug: str, alert_id: int, action: str) -> str:
    return f"/orgs/{org_slug}/alerts/{alert_id}/{action}"


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def events(alert_id: int, kind: str) -> list[AlertEvent]:
    return list(db.session.scalars(
        sa.select(AlertEvent).where(AlertEvent.alert_id == alert_id, AlertEvent.kind == kind).order_by(AlertEvent.id)))


def fresh(alert_id: int) -> Alert:
    db.session.expire_all()
    return db.session.get(Alert, alert_id)


@pytest.fixture()
def alert(world) -> Alert:  # type: ignore[no-untyped-def]
    """An open alert of organization A, of which A's admin was notified."""
    found = sf.alert(world.org_a, [sf.failed(world.connector_a)])
    found.details = {"link": f"/orgs/org-a/integration?alert={found.id}"}
    db.session.add(Notification(user_id=world.admin_a.id, alert_id=found.id, event="raised", title=found.title,
                                organization_id=world.org_a.id))
    db.session.commit()
    return found


@pytest.fixture()
def published(app):  # type: ignore[no-untyped-def]
    """Reads what was published live, by channel: call it after the request."""
    pubsub = redis_ext.client.pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe("sse:*")

    def _read() -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            item = pubsub.get_message(timeout=0.05)
            if item:
                message = json.loads(item["data"])
                seen.append((item["channel"].decode().removeprefix("sse:"), message["type"]))
        return seen

    yield _read
    pubsub.close()


# Acknowledging.

def test_an_org_admin_acknowledges_with_a_note_once_and_everyone_sees_it(client, world, login, alert, published,
                                                                          monkeypatch):
    """Given an open alert, when A's admin acknowledges it with a note (no JavaScript),
    then who, when and the note are kept, one event is recorded, webhooks are asked, the organization's pages and
    the notified admin's tray hear of it, and the alerts page and status screen say "Acknowledged by"."""
    asked = []
    monkeypatch.setattr("dashboard.webhooks.outbox.queue_for_alert", lambda a, event, now: asked.append((a.id, event, a.acknowledged_by.name)))
    login(world.admin_a)

    response = client.post(url("org-a", alert.id, "acknowledge"),
                           data={"note": "  Fixing the account mapping  ", "next": "/orgs/org-a/integration?x=1"})

    assert response.status_code == 302
    assert response.headers["Location"] == f"/orgs/org-a/integration?x=1#alert-{alert.id}-handling"
    done = fresh(alert.id)
    assert done.acknowledged_by_id == world.admin_a.id and done.acknowledged_at is not None
    assert done.acknowledgement_note == "Fixing the account mapping"
    assert [(e.user_id, e.detail) for e in events(alert.id, AlertEventKind.ACKNOWLEDGED)] == [
        (world.admin_a.id, "Fixing the account mapping")]
    assert asked == [(alert.id, "acknowledged", world.admin_a.name)]  # who, known before the commit
    live = published()
    assert (f"org:{world.org_a.id}", "alert-changed") in live
    assert (f"user:{world.admin_a.id}", "tray-changed") in live
    page = text(client.get("/orgs/org-a/alerts").get_data(as_text=True))
    name = world.admin_a.name
    assert f"Acknowledged by {name}" in page and "Fixing the account mapping" in page
    assert f"{name} acknowledged: Fixing the account mapping" in page  # the timeline
    assert "Acknowledge: I'm on it" not in page
    screen = text(client.get(f"/orgs/org-a/integration?alert={alert.id}").get_data(as_text=True))
    assert f"Acknowledged by {name}" in screen
    tray = text(client.get("/notifications/tray").get_data(as_text=True))
    assert f"Acknowledged by {name}" in tray


def test_a_second_acknowledgement_is_refused_and_changes_nothing(client, world, login, alert):
    """Given an alert A's admin acknowledged, when a global admin acknowledges it too (htmx),
    then it is refused with a message naming who did, and nothing is recorded again."""
    login(world.admin_a)
    client.post(url("org-a", alert.id, "acknowledge"), data={"note": "mine"})
    login(world.global_admin)

    response = client.post(url("org-a", alert.id, "acknowledge"), data={"note": "no, mine"}, headers=HTMX)

    assert response.status_code == 422
    assert f"{world.admin_a.name} acknowledged this alert already." in text(response.get_data(as_text=True))
    assert fresh(alert.id).acknowledgement_note == "mine"
    assert len(events(alert.id, AlertEventKind.ACKNOWLEDGED)) == 1


def test_a_global_admin_may_acknowledge_and_htmx_gets_the_focused_handling(client, world, login, alert):
    login(world.global_admin)
    response = client.post(url("org-a", alert.id, "acknowledge"), data={"note": ""}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(rf'id="alert-{alert.id}-state"[^>]*autofocus', html)
    assert f"Acknowledged by {world.global_admin.name}" in text(html)
    assert 'hx-swap-oob="innerHTML:#sr-status"' in html
    assert fresh(alert.id).acknowledged_by_id == world.global_admin.id


def test_a_too_long_note_is_refused_on_the_form_and_nothing_changes(client, world, login, alert):
    login(world.admin_a)
    response = client.post(url("org-a", alert.id, "acknowledge"), data={"note": "x" * 501}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The note can be at most 500 characters long." in html
    assert f'aria-describedby="alert-{alert.id}-note-hint alert-{alert.id}-note-error"' in html
    assert 'aria-invalid="true"' in html
    assert fresh(alert.id).acknowledged_at is None and not events(alert.id, AlertEventKind.ACKNOWLEDGED)


def test_a_resolved_alert_cannot_be_acknowledged_or_snoozed(client, world, login):
    resolved = sf.alert(world.org_a, [], resolved_at=utcnow())
    db.session.commit()
    login(world.admin_a)
    for action, data in (("acknowledge", {"note": ""}), ("snooze", {"duration": "1"})):
        response = client.post(url("org-a", resolved.id, action), data=data, headers=HTMX)
        assert response.status_code == 422
        assert "This alert is resolved" in response.get_data(as_text=True)
    response = client.post(url("org-a", resolved.id, "acknowledge"), data={"note": ""})
    assert response.status_code == 302 and response.headers["Location"].startswith("/orgs/org-a/alerts#")
    assert "This alert is resolved" in client.get("/orgs/org-a/alerts").get_data(as_text=True)
    done = fresh(resolved.id)
    assert done.acknowledged_at is None and done.snoozed_until is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AlertEvent)
                             .where(AlertEvent.alert_id == resolved.id)) == 0


# Snoozing.

def test_snoozing_for_four_hours_then_ending_it_early(client, world, login, alert, published):
    """Given an open alert, when A's admin snoozes it for 4 hours, then it is snoozed until then (an event with the
    UTC time, a live change, "Snoozed until" shown); when they end the snooze, it is cleared and recorded."""
    login(world.admin_a)
    before = utcnow()
    response = client.post(url("org-a", alert.id, "snooze"), data={"duration": "4"}, headers=HTMX)
    assert response.status_code == 200 and "Snoozed until" in text(response.get_data(as_text=True))
    snoozed = fresh(alert.id)
    assert snoozed.snoozed_by_id == world.admin_a.id
    assert timedelta(hours=4) <= snoozed.snoozed_until - before < timedelta(hours=4, minutes=1)
    [event] = events(alert.id, AlertEventKind.SNOOZED)
    assert event.detail == snoozed.snoozed_until.isoformat() + "Z"
    assert (f"org:{world.org_a.id}", "alert-changed") in published()
    page = text(client.get("/orgs/org-a/alerts").get_data(as_text=True))
    assert "Snoozed until" in page and f"{world.admin_a.name} snoozed it until" in page

    response = client.post(url("org-a", alert.id, "unsnooze"), data={})
    assert response.status_code == 302
    ended = fresh(alert.id)
    assert ended.snoozed_until is None and ended.snoozed_by_id is None
    assert [e.detail for e in events(alert.id, AlertEventKind.SNOOZED)][1:] == [handling.SNOOZE_ENDED]
    assert f"{world.admin_a.name} ended the snooze" in text(client.get("/orgs/org-a/alerts").get_data(as_text=True))
    again = client.post(url("org-a", alert.id, "unsnooze"), data={}, headers=HTMX)
    assert again.status_code == 422 and "This alert is not snoozed." in again.get_data(as_text=True)


def test_a_custom_snooze_time_is_the_organizations_local_time(client, world, login, alert):
    login(world.admin_a)
    local = (datetime.now(ZoneInfo("Europe/Oslo")) + timedelta(days=2)).replace(second=0, microsecond=0)
    response = client.post(url("org-a", alert.id, "snooze"),
                           data={"duration": "custom", "until": local.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302
    assert fresh(alert.id).snoozed_until == local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@pytest.mark.parametrize(("data", "message", "field"), [
    ({"duration": "custom", "until": ""}, "Enter the date and time to snooze the alert until.", "snooze-until"),
    ({"duration": "custom", "until": "tomorrow"}, "Enter a date and time such as", "snooze-until"),
    ({"duration": "custom", "until": "2020-01-01T10:00"}, "Choose a time in the future.", "snooze-until"),
    ({"duration": "custom", "until": "2099-01-01T10:00"}, "Choose a time at most 30 days ahead.", "snooze-until"),
    ({"duration": "7"}, "Choose how long to snooze the alert.", "snooze-for"),
])
def test_a_bad_snooze_time_is_named_on_its_field_and_changes_nothing(client, world, login, alert, data, message,
                                                                     field):
    login(world.admin_a)
    response = client.post(url("org-a", alert.id, "snooze"), data=data, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and message in html
    assert re.search(rf'id="alert-{alert.id}-{field}"[^>]*aria-describedby="[^"]*alert-{alert.id}-{field}-error"',
                     html, re.S)
    assert "<details class=\"snooze\" open>" in html
    assert fresh(alert.id).snoozed_until is None and not events(alert.id, AlertEventKind.SNOOZED)


def test_snooze_end_is_read_in_the_zone_across_a_daylight_saving_change():
    """Pure: 03:30 local on the day Oslo leaves summer time (the repeated hour) is its first occurrence, in UTC."""
    now = datetime(2026, 10, 24, 12, 0)
    assert snooze_end("custom", "2026-10-25T02:30", "Europe/Oslo", now) == datetime(2026, 10, 25, 0, 30)
    assert snooze_end("24", "", "Europe/Oslo", now) == datetime(2026, 10, 25, 12, 0)


# Access.

@pytest.mark.parametrize("action", ACTIONS)
def test_another_organizations_admin_gets_404_under_either_address(client, world, login, alert, action):
    """Given A's alert, B's admin gets 404 both under A's address and under B's own address with A's alert id;
    A's admin gets 404 for A's alert under B's address."""
    login(world.admin_b)
    assert client.post(url("org-a", alert.id, action), data={"duration": "1"}).status_code == 404
    assert client.post(url("org-b", alert.id, action), data={"duration": "1"}).status_code == 404
    login(world.admin_a)
    assert client.post(url("org-b", alert.id, action), data={"duration": "1"}).status_code == 404
    assert fresh(alert.id).acknowledged_at is None and fresh(alert.id).snoozed_until is None


@pytest.mark.parametrize("action", ACTIONS)
def test_a_platform_alert_is_not_an_organizations(client, world, login, action):
    platform = Alert(organization_id=None, rule="platform_incident", fingerprint="platform", title="Platform")
    db.session.add(platform)
    db.session.commit()
    login(world.global_admin)
    assert client.post(url("org-a", platform.id, action), data={"duration": "1"}).status_code == 404


@pytest.mark.parametrize("action", ACTIONS)
def test_anonymous_is_sent_to_sign_in(client, world, alert, action):
    response = client.post(url("org-a", alert.id, action), data={"duration": "1"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_next_page_must_be_this_organizations(client, world, login, alert):
    factories.org("org-c")
    db.session.commit()
    login(world.admin_a)
    for target in ("https://evil.example/orgs/org-a/alerts", "//evil.example/x", "/orgs/org-c/alerts"):
        response = client.post(url("org-a", alert.id, "snooze"), data={"duration": "1", "next": target})
        assert response.headers["Location"] == f"/orgs/org-a/alerts#alert-{alert.id}-handling"
        client.post(url("org-a", alert.id, "unsnooze"))


def test_a_records_history_shows_the_acknowledgement_and_the_snooze_and_a_read_is_not_called_acknowledged(
        client, world, login, alert):
    """Given A's admin read the alert's notification, acknowledged it and snoozed it for an hour, the history of
    one of its records says so in words, each by name."""
    [record_id] = db.session.scalars(sa.text("SELECT record_id FROM alert_records WHERE alert_id = :a"),
                                     {"a": alert.id})
    login(world.admin_a)
    client.get(f"/notifications/{db.session.scalar(sa.select(Notification.id))}")
    client.post(url("org-a", alert.id, "acknowledge"), data={"note": "On it"})
    client.post(url("org-a", alert.id, "snooze"), data={"duration": "1"})

    html = client.get(f"/orgs/org-a/integration/records/{record_id}", headers=HTMX).get_data(as_text=True)

    name = world.admin_a.name
    page = text(html)
    assert f"{name} snoozed it until" in page and f"{name} acknowledged: On it" in page
    assert f"{name} read the alert" in page
    assert page.index("snoozed it until") < page.index("acknowledged: On it") < page.index("read the alert")


def test_the_timeline_names_every_way_an_alert_reached_people(client, world, login, alert):
    """Given an alert raised in a maintenance window, then emailed, digested, sent by webhook, reminded and
    escalated, its timeline says each in words (who, and how long it had been open when reminded), and the alerts
    page and the tray say it was raised during maintenance."""
    window = MaintenanceWindow(organization_id=world.org_a.id, starts_at=alert.opened_at - timedelta(hours=1),
                               ends_at=alert.opened_at + timedelta(hours=1))
    db.session.add(window)
    db.session.flush()
    alert.muted_by_window_id = window.id
    at = alert.opened_at + timedelta(hours=3)
    kari = world.admin_a.id
    db.session.add_all([
        AlertEvent(alert_id=alert.id, kind=AlertEventKind.MUTED, at=alert.opened_at),
        AlertEvent(alert_id=alert.id, kind=AlertEventKind.EMAILED, at=at, user_id=kari,
                   detail="raised email to admin-a@example.org, Message-ID <1@x>"),
        AlertEvent(alert_id=alert.id, kind=AlertEventKind.EMAILED, at=at, user_id=kari,
                   detail="resolved email to admin-a@example.org failed after 8 attempts: refused"),
        AlertEvent(alert_id=alert.id, kind=AlertEventKind.DIGESTED, at=at, user_id=kari),
        AlertEvent(alert_id=alert.id, kind=AlertEventKind.WEBHOOK, at=at, detail="raised delivered to h.example (200)"),
        AlertEvent(alert_id=alert.id, kind=AlertEventKind.REMINDED, at=at, detail="snooze ended"),
        AlertEvent(alert_id=alert.id, kind=AlertEventKind.NOTIFIED, at=at, user_id=kari, detail="reminded"),
        AlertEvent(alert_id=alert.id, kind=AlertEventKind.ESCALATED, at=at, detail="open 3 h, not acknowledged"),
        AlertEvent(alert_id=alert.id, kind=AlertEventKind.NOTIFIED, at=at, user_id=kari, detail="escalated"),
    ])
    db.session.commit()

    page = text(login(world.admin_a).get("/orgs/org-a/alerts").get_data(as_text=True))

    assert "Raised during maintenance: nobody was notified" in page
    assert "Raised during maintenance" in text(client.get("/notifications/tray").get_data(as_text=True))
    name = world.admin_a.name
    for words in ("Raised during a maintenance window: nobody notified", f"{name} was emailed",
                  f"{name} could not be emailed: resolved email to admin-a@example.org failed after 8 attempts",
                  f"Listed in {name}'s daily digest", "Webhook: raised delivered to h.example (200)",
                  "Its snooze ended: still open after 3 hours, its administrators are reminded",
                  f"{name} was reminded: still open after 3 hours",
                  "Escalated to the global administrators (open 3 h, not acknowledged)",
                  f"{name} was told it is escalated"):
        assert words in page


def test_a_record_joining_keeps_the_acknowledgement_and_the_resolution_is_still_announced(client, world, login):
    """Given an alert raised by the real rules and acknowledged, when another record crosses and joins it, it stays
    acknowledged (once); when both records sync, the admin is told it is resolved as usual."""
    first, second = (factories.record(world.connector_a, approved_at=T0 - timedelta(hours=1)) for _ in range(2))
    db.session.commit()
    for i in range(3):
        run(world.connector_a, [(first, "account_mapping_missing")], at=T0 + timedelta(minutes=i))
    [raised] = alerts()
    login(world.admin_a).post(url("org-a", raised.id, "acknowledge"), data={"note": "On it"})
    acknowledged_at = fresh(raised.id).acknowledged_at

    for i in range(3):
        run(world.connector_a, [(second, "account_mapping_missing")], at=T0 + timedelta(minutes=10 + i))
    joined = fresh(raised.id)
    assert affected_ids(joined) == {first.id, second.id}
    assert joined.acknowledged_at == acknowledged_at and joined.acknowledgement_note == "On it"
    assert len(events(raised.id, AlertEventKind.ACKNOWLEDGED)) == 1

    run(world.connector_a, [(first, None), (second, None)], at=T0 + timedelta(minutes=20))
    assert fresh(raised.id).status == "resolved"
    assert [n.event for n in notifications(world.admin_a)] == ["raised", "resolved"]


def test_a_snooze_until_year_one_is_refused_with_a_message_not_an_error(client, world, login):
    """Given an open alert, when a snooze until 0001-01-01 00:00 is posted (a time no zone can convert), it answers
    422 naming the problem and the alert stays unsnoozed."""
    from tests import status_factories

    alert = status_factories.alert(world.org_a, [status_factories.failed(world.connector_a)])
    db.session.commit()
    login(world.admin_a)
    answer = client.post(f"/orgs/org-a/alerts/{alert.id}/snooze", headers={"HX-Request": "true"},
                         data={"duration": "custom", "until": "0001-01-01T00:00"})
    assert answer.status_code == 422 and "Enter a date and time such as" in answer.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(type(alert), alert.id).snoozed_until is None
