"""Acknowledging and snoozing in Chromium (issue 12, items 4, 5 and 9): one admin acknowledges from the alert view
by keyboard only, another admin's open page shows it live through the real event stream; axe on the acknowledged,
snoozed and refused states; the alerts page's forms work with htmx and name a bad time on its field."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from dashboard.extensions import db
from dashboard.live.publish import organization_channel, publish_now
from dashboard.models import Alert, Notification
from dashboard.vocabulary import LiveEvent
from tests import factories
from tests import status_factories as sf
from tests.browser.conftest import wait_live

LIVE_TIMEOUT = 15_000


@pytest.fixture()
def alert(world) -> Alert:  # type: ignore[no-untyped-def]
    """An open alert of organization A whose admin was notified, and a second admin of A."""
    found = sf.alert(world.org_a, [sf.failed(world.connector_a, source_ref="ACK-1")])
    found.title = "1 expense claim keeps failing"
    found.details = {"link": f"/orgs/org-a/integration?alert={found.id}"}
    db.session.add(Notification(user_id=world.admin_a.id, alert_id=found.id, event="raised", title=found.title,
                                organization_id=world.org_a.id))
    db.session.commit()
    return found


def _tab_to(page: Page, element_id: str, most: int = 80) -> None:
    """Press Tab until the element has focus (keyboard only, from wherever focus is)."""
    for _ in range(most):
        if page.evaluate("id => document.activeElement && document.activeElement.id === id", element_id):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached #{element_id}")


def test_an_acknowledgement_by_keyboard_shows_live_on_another_admins_open_alert_view(
        world, alert, new_page, signed_in, axe_check):
    """Given two admins of A with the alert's view open, when the first acknowledges it by keyboard only,
    then focus lands on what changed, and the second admin's open pages (the alert view and the alerts page) say
    "Acknowledged by" without a reload;
    axe finds nothing with the acknowledgement shown, the snooze form open, and the alert snoozed."""
    second = factories.user("second-a@example.org", orgs=(world.org_a,))
    db.session.commit()
    view = f"/orgs/org-a/integration?alert={alert.id}"
    watcher = signed_in(second, on=new_page())
    watcher.goto(view)
    wait_live(watcher)
    listing = watcher.context.new_page()
    listing.goto("/orgs/org-a/alerts")
    wait_live(listing)
    loads = []
    watcher.on("load", lambda _page: loads.append(1))
    listing.on("load", lambda _page: loads.append(1))
    actor = signed_in(world.admin_a, on=new_page())
    actor.goto(view)
    wait_live(actor)

    _tab_to(actor, f"alert-{alert.id}-note")
    actor.keyboard.type("Fixing the account mapping")
    actor.keyboard.press("Tab")
    expect(actor.locator(f"#alert-{alert.id}-acknowledge")).to_be_focused()
    actor.keyboard.press("Enter")

    state = actor.locator(f"#alert-{alert.id}-state")
    expect(state).to_contain_text(f"Acknowledged by {world.admin_a.name}")
    expect(state).to_be_focused()
    seen = watcher.locator(f"#alert-{alert.id}-state")
    expect(seen).to_contain_text(f"Acknowledged by {world.admin_a.name}", timeout=LIVE_TIMEOUT)
    expect(seen).to_contain_text("Fixing the account mapping")
    expect(listing.locator(f"#alert-{alert.id}-state")).to_contain_text(f"Acknowledged by {world.admin_a.name}",
                                                                       timeout=LIVE_TIMEOUT)
    assert not loads, "the second admin's pages were reloaded"
    expect(watcher.locator(f"#alert-{alert.id}-acknowledge")).to_have_count(0)
    expect(state).to_be_focused()  # the actor's own live refresh kept focus where it was

    watcher.locator(f"#alert-{alert.id}-handling summary").click()
    axe_check(watcher)

    actor.locator(f"#alert-{alert.id}-handling summary").click()
    actor.get_by_label("Snooze for").select_option(label="4 hours")
    actor.get_by_role("button", name=re.compile(r"^Snooze \(")).click()
    expect(state).to_contain_text("Snoozed until")
    expect(actor.get_by_role("button", name=re.compile("^End snooze"))).to_be_visible()
    expect(seen).to_contain_text("Snoozed until", timeout=LIVE_TIMEOUT)
    axe_check(actor)


def test_on_the_alerts_page_a_bad_snooze_time_is_named_on_its_field_then_a_good_one_snoozes(
        world, alert, signed_in, axe_check):
    """Given the alerts page, when the admin asks for a custom snooze without a time, the field says so, is
    described by the message and has focus; with a time 4 hours on, the alert is snoozed; axe finds nothing."""
    page = signed_in(world.admin_a)
    page.goto("/orgs/org-a/alerts")
    wait_live(page)
    handling = page.locator(f"#alert-{alert.id}-handling")
    handling.locator("summary").click()
    page.get_by_label("Snooze for").select_option(label="Until a time I choose")
    page.get_by_role("button", name=re.compile(r"^Snooze \(")).click()

    until = page.locator(f"#alert-{alert.id}-snooze-until")
    expect(until).to_have_attribute("aria-invalid", "true")
    expect(until).to_be_focused()
    expect(page.locator(f"#alert-{alert.id}-snooze-until-error")).to_contain_text(
        "Enter the date and time to snooze the alert until.")
    axe_check(page)

    until.fill((datetime.now(ZoneInfo(world.org_a.timezone)) + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name=re.compile(r"^Snooze \(")).click()
    expect(page.locator(f"#alert-{alert.id}-state")).to_contain_text("Snoozed until")
    page.locator(f"#alert-{alert.id}-note").fill("Looking")
    page.get_by_role("button", name=re.compile("^Acknowledge")).click()
    expect(page.locator(f"#alert-{alert.id}-state")).to_contain_text(f"Acknowledged by {world.admin_a.name}")
    axe_check(page)


def test_a_live_refresh_of_the_alerts_page_keeps_a_disclosure_the_reader_opened_open(world, alert, signed_in):
    """Given the alerts page with an alert's handling controls opened, when another change to the alert arrives
    live and the list refreshes, then the controls stay open (a quiet refresh never closes what the reader opened)."""
    page = signed_in(world.admin_a)
    page.goto("/orgs/org-a/alerts")
    wait_live(page)
    handling = page.locator(f"#alert-{alert.id}-handling")
    handling.locator("summary").click()
    expect(page.get_by_label("Snooze for")).to_be_visible()

    alert.title = "2 expense claims keep failing"
    db.session.commit()
    publish_now(organization_channel(world.org_a.id), LiveEvent.ALERT_CHANGED.value, {"alert_id": alert.id})

    expect(page.locator("#alerts-list")).to_contain_text("2 expense claims keep failing", timeout=LIVE_TIMEOUT)
    expect(handling.locator("details.snooze")).to_have_attribute("open", "")
    expect(page.get_by_label("Snooze for")).to_be_visible()
