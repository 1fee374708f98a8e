"""The tray panel (issue 15): it closes when focus leaves it and on a click outside it, leaving focus where the
user put it; and `tray-changed` (a notification gathered into a summary, or a summary's count changed) refreshes
the list and the unread count without a word in the live region; a notification that is announced is said in
its own words."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from dashboard.extensions import db
from dashboard.live.publish import publish_now, user_channel
from dashboard.models import Notification
from dashboard.vocabulary import LiveEvent, NotificationEvent
from tests import status_factories
from tests.browser.conftest import ANNOUNCEMENT_RECORDER, wait_for, wait_live

QUIET_MS = 2_500  # longer than the announcer's gathering (0.5 s) and its pause (2 s)


def _unread(page: Page, n: int) -> None:
    expect(page.get_by_role("button", name=f"Notifications, {n} unread", exact=True)).to_be_visible()


def test_the_tray_closes_on_focus_leaving_it_and_on_a_click_outside(world, signed_in):
    """Given the open tray, Tab past its last control closes it and leaves focus on the next control (Sign
    out); opened again, a click outside it closes it; Shift+Tab from its button backwards closes it too."""
    page = signed_in(world.admin_a)
    page.goto("/orgs/org-a/integration")
    button, panel = page.locator("#tray-button"), page.locator("#tray-panel")
    button.focus()
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    page.locator("#tray-panel a").last.focus()
    page.keyboard.press("Tab")
    expect(panel).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("button", name="Sign out")).to_be_focused()

    button.click()
    expect(panel).to_be_visible()
    page.locator("h1").click()
    expect(panel).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")

    button.focus()
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    page.keyboard.press("Shift+Tab")
    expect(panel).to_be_hidden()
    expect(button).not_to_be_focused()


def test_clicks_inside_the_tray_keep_it_open(world, signed_in):
    """Given the open tray, a click on its heading (outside any control) leaves it open."""
    page = signed_in(world.admin_a)
    page.locator("#tray-button").click()
    page.locator("#tray-heading").click()
    expect(page.locator("#tray-panel")).to_be_visible()


def test_tray_changed_refreshes_the_list_and_count_quietly(world, signed_in):
    """Given an open page, when a summary notification is written and `tray-changed` arrives on the user's
    channel, the tray lists it and the button says 1 unread; when a notification is gathered into it, its count
    (rendered when shown) follows; nothing is announced either time."""
    page = signed_in(world.admin_a)
    page.add_init_script(ANNOUNCEMENT_RECORDER)
    page.reload()
    wait_live(page)
    _unread(page, 0)
    summary = Notification(user_id=world.admin_a.id, organization_id=world.org_a.id, event=NotificationEvent.SUMMARY,
                           digest_key="test:org-a:today", title="summary")
    db.session.add(summary)
    db.session.commit()
    channel = user_channel(world.admin_a.id)
    publish_now(channel, LiveEvent.TRAY_CHANGED.value, {"id": summary.id})
    _unread(page, 1)
    page.locator("#tray-button").click()
    expect(page.locator("#tray-list")).to_contain_text("0 more alert events today")

    alert = status_factories.alert(world.org_a, [status_factories.failed(world.connector_a)])
    db.session.add(Notification(user_id=world.admin_a.id, organization_id=world.org_a.id, alert_id=alert.id,
                                event=NotificationEvent.RAISED, title=alert.title, gathered_into_id=summary.id))
    db.session.commit()
    publish_now(channel, LiveEvent.TRAY_CHANGED.value, {"id": summary.id})
    expect(page.locator("#tray-list")).to_contain_text("1 more alert event today")
    page.wait_for_timeout(QUIET_MS)
    assert page.evaluate("window.__announced") == []
    expect(page.locator("#sr-alert")).to_have_text("")


@pytest.mark.parametrize("event, title, spoken", [
    ("raised", "3 mileage claims failed 3 times in a row", "New alert: 3 mileage claims failed 3 times in a row"),
    ("resolved", "Cleared: 3 mileage claims failed, all 3 records synced",
     "Cleared: 3 mileage claims failed, all 3 records synced"),
    ("flapping", "Keeps coming back: 3 times since 08:00. Error threshold exceeded",
     "Keeps coming back: 3 times since 08:00. Error threshold exceeded"),
])
def test_a_notification_is_announced_once_in_its_own_words(world, signed_in, event, title, spoken):
    """Given an open page, a raised alert is announced as "New alert: <title>"; a resolution or a flapping
    alert, whose titles say what they are, by its title alone (no "Resolved: Cleared: …")."""
    page = signed_in(world.admin_a)
    page.add_init_script(ANNOUNCEMENT_RECORDER)
    page.reload()
    wait_live(page)
    publish_now(user_channel(world.admin_a.id), LiveEvent.NOTIFICATION.value,
                {"id": 1, "alert_id": 1, "event": event, "title": title, "link": "/notifications/1"})
    wait_for(page, "window.__announced.length > 0")
    page.wait_for_timeout(QUIET_MS)
    assert page.evaluate("window.__announced") == [spoken]
