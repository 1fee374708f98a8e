"""The organizations' management pages in Chromium, by keyboard alone: a refused organization's error, creating
one, and archiving it after the confirmation, each state axe clean."""
from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect

from dashboard.extensions import db
from dashboard.models import Organization


def _tab_to(page: Page, target: str | Locator) -> None:
    """Press Tab until the element has the focus (the way a keyboard user gets there)."""
    element = page.locator(target) if isinstance(target, str) else target
    for _ in range(60):
        if element.evaluate("(element) => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {target}")


def test_a_keyboard_user_creates_an_organization_then_archives_it(world, new_page, signed_in, axe_check):
    """Given a global admin on the platform page, when they follow "Manage organizations" and "Create an
    organization" and submit without a name, the error is named and tied to the field; when they type a name,
    leave the slug to be made from it, choose English and submit, the organization is listed; when they archive it
    and confirm, it leaves the list. Axe finds nothing in any state."""
    page = signed_in(world.global_admin, on=new_page(locale="en-US"))
    page.goto("/platform")
    _tab_to(page, page.get_by_role("link", name="Manage organizations"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Manage organizations")
    axe_check(page)

    _tab_to(page, page.get_by_role("link", name="Create an organization"))
    page.keyboard.press("Enter")
    _tab_to(page, "#submit")
    page.keyboard.press("Enter")
    expect(page.locator("#error-summary")).to_contain_text("Enter the organization's name.")
    expect(page.locator("#name")).to_have_attribute("aria-describedby", "name-error")
    axe_check(page)

    _tab_to(page, "#name")
    page.keyboard.type("Blindeforbundet Øst")
    _tab_to(page, "#language")
    page.keyboard.type("English")
    expect(page.locator("#language")).to_have_value("en")
    _tab_to(page, "#submit")
    page.keyboard.press("Enter")

    expect(page.locator(".flash")).to_contain_text(
        "Blindeforbundet Øst is created, with the slug “blindeforbundet-ost”")
    row = page.get_by_role("row", name="Blindeforbundet Øst")
    expect(row).to_contain_text("Europe/Oslo")
    expect(row).to_contain_text("English")
    axe_check(page)

    _tab_to(page, row.get_by_role("link", name="Archive Blindeforbundet Øst"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("It has no open alert to resolve.")).to_be_visible()
    axe_check(page)
    _tab_to(page, page.get_by_role("button", name="Archive Blindeforbundet Øst"))
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Blindeforbundet Øst is archived")
    expect(page.get_by_role("row", name="Blindeforbundet Øst")).to_have_count(0)
    axe_check(page)

    db.session.rollback()
    created = db.session.scalar(sa.select(Organization).where(Organization.slug == "blindeforbundet-ost"))
    assert created.language == "en" and created.archived_at is not None
