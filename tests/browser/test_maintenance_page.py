"""The maintenance windows page in Chromium, by keyboard alone: a refused window's errors, creating one and
ending it, each state axe clean."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect

from dashboard.extensions import db
from dashboard.models import MaintenanceWindow, utcnow


def _tab_to(page: Page, selector: str | Locator) -> None:
    """Press Tab until the element has the focus (the way a keyboard user gets there)."""
    target = page.locator(selector) if isinstance(selector, str) else selector
    for _ in range(60):
        if target.evaluate("(element) => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_a_keyboard_user_is_told_what_is_wrong_then_creates_a_window_and_ends_it(world, new_page, signed_in,
                                                                                    axe_check):
    """Given org A's admin on the maintenance page, when they submit without an end, the error is named and
    linked; when they type an end tomorrow, tick period_locked, give a reason and submit, the window is listed
    as open; when they end it, it is listed as ended early by them. Axe finds nothing in any state."""
    page = signed_in(world.admin_a, on=new_page(locale="en-US"))
    page.goto("/orgs/org-a/settings/maintenance")
    axe_check(page)

    _tab_to(page, "#submit")
    page.keyboard.press("Enter")
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("Enter when the window ends, as a date and a time.")
    expect(page.locator("#ends_at")).to_have_attribute("aria-describedby", "ends_at-error")
    axe_check(page)

    tomorrow = (utcnow() + timedelta(days=1)).replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo("Europe/Oslo"))
    _tab_to(page, "#ends_at")
    page.keyboard.type(f"{tomorrow:%m%d%Y}")  # Chromium's fields: month, day, year, then hour, minute, AM/PM
    page.keyboard.press("Tab")
    page.keyboard.type("1030A")
    expect(page.locator("#ends_at")).to_have_value(f"{tomorrow:%Y-%m-%d}T10:30")
    _tab_to(page, "#error_codes-0")
    page.keyboard.press("Space")
    _tab_to(page, "#reason")
    page.keyboard.type("Month-end closing")
    _tab_to(page, "#submit")
    page.keyboard.press("Enter")

    expect(page.locator(".flash")).to_contain_text("The maintenance window is saved")
    row = page.get_by_role("row", name="Month-end closing")
    expect(row).to_contain_text("Open now")
    expect(row).to_contain_text(f"{tomorrow:%Y-%m-%d} 10:30")
    expect(row).to_contain_text("period_locked")
    axe_check(page)

    _tab_to(page, page.get_by_role("button", name="End now the window “Month-end closing”"))
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("The maintenance window is ended")
    expect(page.get_by_role("region", name="1 window ended in the last 90 days")).to_contain_text(
        f"ended early by {world.admin_a.name}")
    expect(page.get_by_text("No maintenance window is open or upcoming.")).to_be_visible()
    axe_check(page)
    db.session.rollback()
    [window] = db.session.scalars(sa.select(MaintenanceWindow)).all()
    assert window.ended_by_id == world.admin_a.id and window.error_codes == ["period_locked"]
