"""The email preferences page in Chromium: operable by keyboard alone, the save announced in its status region
(present and empty at load), errors named and focused, and axe finding nothing in either state."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from dashboard.extensions import db
from dashboard.models import User

STATUS_RECORDER = """
window.__status = [];
document.addEventListener('DOMContentLoaded', () => {
  const region = document.getElementById('preferences-status');
  new MutationObserver(() => {
    if (region.textContent.trim()) { window.__status.push(region.textContent.trim()); }
  }).observe(region, {subtree: true, childList: true, characterData: true});
});
"""


def saved_choices(user: User) -> tuple[str, str, int, int]:
    db.session.rollback()  # a new snapshot: the live server committed in another thread
    person = db.session.get(User, user.id)
    return person.email_raised, person.email_resolved, person.email_delay_minutes, person.digest_minute


def test_choices_are_made_and_saved_with_the_keyboard_and_the_save_is_announced(page: Page, world, signed_in,
                                                                                axe_check):
    """Given admin A on the page, when they choose with arrow keys and Tab, type a delay and a time and press
    Enter, then the choices are saved, the status region says so, focus stays on the field they were in, and axe
    finds nothing before or after."""
    page.add_init_script(STATUS_RECORDER)
    signed_in(world.admin_a)
    page.goto("/account/notifications")
    expect(page.locator("#preferences-status")).to_be_empty()
    axe_check(page)
    page.locator("#email_raised-0").focus()  # the checked radio of the first group, where Tab lands
    page.keyboard.press("ArrowDown")
    expect(page.locator("#email_raised-1")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.locator("#email_resolved-0")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#email_resolved-2")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.locator("#email_delay_minutes")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("0")
    page.keyboard.press("Tab")
    expect(page.locator("#digest_time")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("06:45")
    page.keyboard.press("Enter")
    expect(page.locator("#preferences-status")).to_have_text("Note: Your email preferences are saved.")
    expect(page.locator("#digest_time")).to_be_focused()
    assert page.evaluate("window.__status") == ["Note: Your email preferences are saved."]
    assert saved_choices(world.admin_a) == ("digest", "never", 0, 405)
    axe_check(page)


def test_a_bad_time_is_named_focused_and_saves_nothing(page: Page, world, signed_in, axe_check):
    """Given admin A typing 25:00 as the digest time, when they save, then the error summary takes focus and
    links to the field, the field says what is wrong and is marked invalid, nothing is saved, and axe finds
    nothing."""
    signed_in(world.admin_a)
    page.goto("/account/notifications")
    page.locator("#digest_time").fill("25:00")
    page.get_by_role("button", name="Save email preferences").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_attribute("href", "#digest_time")
    expect(page.locator("#digest_time")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Time of the daily digest (HH:MM)")).to_have_accessible_description(
        "Your local time, in the Europe/Oslo time zone. The digest comes once a day at this time, if anything is "
        "open or has changed. Error: Enter the digest time as hours and minutes from 00:00 to 23:59, for example "
        "08:00.")
    expect(page.locator("#preferences-status")).to_be_empty()
    assert saved_choices(world.admin_a) == ("immediate", "immediate", 10, 480)
    axe_check(page)
