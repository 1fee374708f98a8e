"""The notification tray in Chromium: a disclosure button (not a menu), axe with it open and closed, the
unread count in the button's name, a keyboard-only journey from a live alert to its records, and what the
status live region announced."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Locator, Page, expect

from dashboard.extensions import db
from dashboard.models import Alert, SyncRecord, utcnow
from tests import factories
from tests.alerting import affected_ids, alerts, run
from tests.browser.conftest import ANNOUNCEMENT_RECORDER, wait_for, wait_live

LIVE_TIMEOUT = 15_000
TYPES = ("mileage_claim", "expense_claim", "reimbursement_payment")


def _records(connector, record_types, per_type: int = 1) -> list[SyncRecord]:
    made = [factories.record(connector, record_type=t) for t in record_types for _ in range(per_type)]
    db.session.commit()
    return made


def _fail(connector, records, times=(30, 20, 10), error_code: str = "account_mapping_missing") -> None:
    """Fail the records together in one batch per time (minutes ago) through the real writer and engine."""
    for minutes in times:
        run(connector, [(r, error_code) for r in records], at=utcnow() - timedelta(minutes=minutes))


def _raise_alerts(connector, record_types=TYPES[:1], per_type: int = 1) -> list[Alert]:
    """One rule-1 alert per record type, raised by the same (third) batch; published over the real Redis."""
    records = _records(connector, record_types, per_type)
    _fail(connector, records)
    raised = [alerts(rule="consecutive_failures", record_type=t)[-1] for t in record_types]
    assert len(raised) == len(record_types)
    return raised


def _primed(connector, record_types=TYPES[:1]) -> list[SyncRecord]:
    """Records that failed twice: one more failing batch raises the alerts."""
    before = len(alerts())
    records = _records(connector, record_types)
    _fail(connector, records, times=(30, 20))
    assert len(alerts()) == before
    return records


def _button(page: Page) -> Locator:
    return page.locator("#tray-button")


def _unread(page: Page, n: int) -> None:
    expect(page.get_by_role("button", name=f"Notifications, {n} unread", exact=True)).to_be_visible(
        timeout=LIVE_TIMEOUT)


def _mark_read(page: Page, title: str) -> Locator:
    """An item's Mark as read button (its hidden text adds the title; Chromium puts a space before it)."""
    return page.get_by_role("button", name=re.compile(r"^Mark as read\s*: " + re.escape(title) + "$"))


def _announced(page: Page) -> list[str]:
    return page.evaluate("window.__announced")


def _tab_to(page: Page, target: Locator, limit: int = 20) -> int:
    """Press Tab until `target` has focus; returns how many presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return presses
    raise AssertionError(f"{limit} presses of Tab never reached {target}")


# axe, open and closed.


def test_tray_closed_and_open_has_no_axe_violations(world, signed_in, axe_check):
    """Given an admin with an unread alert, axe finds nothing on the page with the tray closed, nor with it
    open (the whole page and the panel alone)."""
    (alert,) = _raise_alerts(world.connector_a)
    page = signed_in(world.admin_a)
    _unread(page, 1)
    expect(page.locator("#tray-list")).to_contain_text(alert.title)
    expect(page.locator("#tray-panel")).to_be_hidden()
    axe_check(page)
    _button(page).click()
    expect(page.locator("#tray-panel")).to_be_visible()
    axe_check(page)
    axe_check(page, "#tray-panel")


# The disclosure.


def test_tray_button_is_a_disclosure_not_a_menu(world, signed_in):
    """Given the tray button, it controls the panel with aria-expanded and no menu roles."""
    page = signed_in(world.admin_a)
    button = _button(page)
    expect(button).to_have_attribute("aria-controls", "tray-panel")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).not_to_have_attribute("aria-haspopup", re.compile("."))
    assert page.locator("#tray [role=menu], #tray [role=menuitem]").count() == 0
    expect(page.locator("#tray-panel h2")).to_have_text("Notifications")
    expect(page.locator("#tray-list")).to_have_attribute("aria-labelledby", "tray-heading")


def test_enter_and_space_toggle_the_panel_without_moving_focus(world, signed_in):
    """Given focus on the tray button, Enter opens the panel and Space closes it; focus stays on the button."""
    _raise_alerts(world.connector_a)
    page = signed_in(world.admin_a)
    button, panel = _button(page), page.locator("#tray-panel")
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(panel).to_be_visible()
    expect(button).to_be_focused()
    page.keyboard.press("Space")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(panel).to_be_hidden()
    expect(button).to_be_focused()
    page.keyboard.press("Space")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(panel).to_be_visible()
    page.keyboard.press("Enter")
    expect(panel).to_be_hidden()


def test_escape_closes_the_panel_and_returns_focus_to_the_button(world, signed_in):
    """Given the open panel with focus inside it, Escape closes it and focus returns to the button."""
    (alert,) = _raise_alerts(world.connector_a)
    page = signed_in(world.admin_a)
    button, panel = _button(page), page.locator("#tray-panel")
    button.focus()
    page.keyboard.press("Enter")
    link = page.locator("#tray-list a").first
    expect(link).to_contain_text(alert.title)
    page.keyboard.press("Tab")
    expect(link).to_be_focused()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()
    page.keyboard.press("Enter")  # and once more from the button itself
    expect(panel).to_be_visible()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(button).to_be_focused()


# Read state.


def test_mark_one_and_all_as_read_update_the_count_in_the_buttons_name(world, signed_in):
    """Given two unread alerts, marking one read says 1 unread in the button's name, and marking all
    read says 0 unread; the items say Read as text."""
    first, second = _raise_alerts(world.connector_a, TYPES[:2])
    page = signed_in(world.admin_a)
    _unread(page, 2)
    _button(page).click()
    _mark_read(page, first.title).click()
    _unread(page, 1)
    item = page.locator("#tray-list li", has_text=first.title)
    expect(item.locator(".notification-meta")).to_have_text(re.compile(r"· Read\s*$"))
    expect(item.get_by_role("button")).to_have_count(0)
    expect(_mark_read(page, second.title)).to_be_visible()
    page.get_by_role("button", name="Mark all as read").click()
    _unread(page, 0)
    expect(page.locator("#tray-list").get_by_role("button")).to_have_count(0)
    expect(page.locator("#tray-panel")).to_be_visible()


def test_marking_one_read_keeps_focus_in_the_tray(world, signed_in):
    """Given focus on an item's Mark as read button, after pressing it focus stays in the tray
    (on that item's link), not on the page's body."""
    (alert,) = _raise_alerts(world.connector_a)
    page = signed_in(world.admin_a)
    _unread(page, 1)
    _button(page).click()
    mark = _mark_read(page, alert.title)
    mark.focus()
    expect(mark).to_be_focused()
    page.keyboard.press("Enter")
    _unread(page, 0)
    expect(page.locator("#tray-panel :focus")).to_have_count(1, timeout=2_000)


# Live alerts: keyboard journey, announcements, focus.


def test_keyboard_only_journey_from_a_live_alert_to_its_records(world, signed_in):
    """Given an org admin's open page, when an alert arrives, they Tab to the tray button, open it with
    Enter, Tab to the alert's link and press Enter, and land on the alert's view listing exactly its
    affected records; the live region announced the alert by name."""
    records = _primed(world.connector_a)
    page = signed_in(world.admin_a)
    page.add_init_script(ANNOUNCEMENT_RECORDER)
    page.reload()
    wait_live(page)
    _unread(page, 0)
    _fail(world.connector_a, records, times=(10,))
    (alert,) = alerts()
    _unread(page, 1)
    wait_for(page, "t => window.__announced.some(a => a.includes(t))", arg=alert.title)

    button = _button(page)
    page.evaluate("document.activeElement && document.activeElement.blur()")  # start from the top
    _tab_to(page, button)
    page.keyboard.press("Enter")
    expect(page.locator("#tray-panel")).to_be_visible()
    link = page.locator("#tray-list a").first
    expect(link).to_contain_text(alert.title)
    _tab_to(page, link, limit=1)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/orgs/org-a/integration\?alert={alert.id}$"))
    expect(page.get_by_role("heading", name="Records of the alert")).to_be_visible()
    rows = page.locator("#records tbody tr[id^='record-']")
    expect(rows).to_have_count(len(records))
    ids = rows.evaluate_all("rows => rows.map(r => Number(r.id.slice('record-'.length)))")
    assert set(ids) == affected_ids(alert) == {r.id for r in records}
    _unread(page, 0)  # opening the notification marked it read


def test_a_new_alert_is_announced_by_name(world, signed_in):
    """Given an open page, a new alert's title is written once to the polite status region."""
    records = _primed(world.connector_a)
    page = signed_in(world.admin_a)
    page.add_init_script(ANNOUNCEMENT_RECORDER)
    page.reload()
    wait_live(page)
    _fail(world.connector_a, records, times=(10,))
    (alert,) = alerts()
    _unread(page, 1)
    wait_for(page, "t => window.__announced.some(a => a.includes(t))", arg=alert.title, timeout=LIVE_TIMEOUT)
    assert _announced(page) == [f"New alert: {alert.title}"]
    expect(page.locator("#sr-status")).to_have_attribute("role", "status")
    expect(page.locator("#sr-alert")).to_have_text("")


def test_several_alerts_arriving_together_are_announced_as_one_summary(world, signed_in):
    """Given an open page, when three alerts are raised by one batch, the live region speaks one summary
    naming all three, not a message per alert."""
    records = _primed(world.connector_a, TYPES)
    page = signed_in(world.admin_a)
    page.add_init_script(ANNOUNCEMENT_RECORDER)
    page.reload()
    wait_live(page)
    _fail(world.connector_a, records, times=(10,))
    raised = alerts()
    assert len(raised) == 3
    _unread(page, 3)
    wait_for(page, "titles => titles.every(t => window.__announced.some(a => a.includes(t)))",
             arg=[a.title for a in raised], timeout=LIVE_TIMEOUT)
    announced = _announced(page)
    assert len(announced) == 1, announced
    assert announced[0].startswith("3 new")


def test_an_alert_arriving_while_the_panel_is_open_does_not_move_focus(world, signed_in):
    """Given the open panel with focus on the tray button, a new alert appears in the list and the count
    changes, while focus stays on the button."""
    records = _primed(world.connector_a)
    page = signed_in(world.admin_a)
    wait_live(page)
    button = _button(page)
    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#tray-list")).to_contain_text("No notifications yet.")
    _fail(world.connector_a, records, times=(10,))
    (alert,) = alerts()
    _unread(page, 1)
    expect(page.locator("#tray-list a").first).to_contain_text(alert.title)
    expect(button).to_be_focused()
    expect(page.locator("#tray-panel")).to_be_visible()


def test_an_alert_arriving_while_reading_the_list_does_not_move_focus(world, signed_in):
    """Given the open panel with focus on an older notification's link, when a new alert arrives, focus
    stays on that same link."""
    _raise_alerts(world.connector_a, TYPES[:1])
    records = _primed(world.connector_a, TYPES[1:2])
    page = signed_in(world.admin_a)
    wait_live(page)
    _unread(page, 1)
    _button(page).click()
    old_link = page.locator("#tray-list a").first
    href = old_link.get_attribute("href")
    old_link.focus()
    _fail(world.connector_a, records, times=(10,))
    _unread(page, 2)
    expect(page.locator("#tray-list a")).to_have_count(2)
    expect(page.locator(f"#tray-list a[href='{href}']")).to_be_focused(timeout=2_000)


def test_a_new_alert_is_inserted_from_its_event_without_fetching_the_list(world, signed_in, axe_check):
    """Given the open panel with one older notification, when a batch raises an alert, its item appears at the
    top with the count, from the live event alone (no request for the list), once, with a working Mark as read
    button, focus where it was, and axe finding nothing in the panel; the confirming fetch a second later
    changes nothing."""
    (older,) = _raise_alerts(world.connector_a, TYPES[:1])
    records = _primed(world.connector_a, TYPES[1:2])
    page = signed_in(world.admin_a)
    wait_live(page)
    _unread(page, 1)
    _button(page).click()
    page.locator("#tray-list a").first.focus()
    page.wait_for_timeout(300)  # the load and resync fetches have answered
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url) if "/notifications/tray" in request.url else None)
    _fail(world.connector_a, records, times=(10,))
    new = alerts(rule="consecutive_failures", record_type=TYPES[1])[-1]
    _unread(page, 2)
    items = page.locator("#tray-list > li.notification")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text(new.title)
    expect(items.nth(1)).to_contain_text(older.title)
    assert fetched == []  # the item and count came with the event
    older_link = page.locator(f"#tray-list a[href$='{items.nth(1).get_attribute('data-notification-id')}']")
    expect(older_link).to_be_focused()

    # A second later the list is fetched to confirm the count from what is committed; nothing moves.
    page.wait_for_event("response", lambda response: "/notifications/tray" in response.url, timeout=5_000)
    page.wait_for_timeout(200)  # swapped and settled
    expect(items).to_have_count(2)
    expect(older_link).to_be_focused()
    _unread(page, 2)
    axe_check(page, "#tray-panel")
    _mark_read(page, new.title).click()
    _unread(page, 1)


def test_a_count_the_event_could_not_see_is_corrected_from_what_is_committed(world, signed_in):
    """Given an open page with one unread notification, when a notification's event arrives whose count was taken
    before another transaction committed (here: a second notification made unread meanwhile), then the item is
    inserted with the event's count, and a moment later the button says the committed count."""
    from dashboard.alerts.tray_item import tray_event
    from dashboard.live.publish import publish_now, user_channel
    from dashboard.models import Notification
    from dashboard.vocabulary import LiveEvent

    (older,) = _raise_alerts(world.connector_a, TYPES[:1])
    page = signed_in(world.admin_a)
    wait_live(page)
    _unread(page, 1)
    hidden = Notification(user_id=world.admin_a.id, alert_id=older.id, event="resolved", title="Cleared: test",
                          organization_id=world.org_a.id)
    db.session.add(hidden)
    db.session.commit()  # 2 unread now; the event's transaction saw 1 (another one committed meanwhile)
    event = {"id": hidden.id, "alert_id": older.id, "event": hidden.event, "link": f"/notifications/{hidden.id}",
             **tray_event(hidden, world.admin_a, world.org_a, 1)}

    publish_now(user_channel(world.admin_a.id), LiveEvent.NOTIFICATION.value, event)

    expect(page.locator(f"#tray-list > li[data-notification-id='{hidden.id}']")).to_have_count(1, timeout=LIVE_TIMEOUT)
    _unread(page, 2)
