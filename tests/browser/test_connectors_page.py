"""The connectors pages in Chromium, by keyboard alone: adding a sandbox connector, enabling it and removing it,
each state axe clean."""
from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect

from dashboard.extensions import db
from dashboard.models import Connector


def _tab_to(page: Page, selector: str | Locator) -> None:
    """Press Tab until the element has the focus (the way a keyboard user gets there)."""
    target = page.locator(selector) if isinstance(selector, str) else selector
    for _ in range(80):
        if target.evaluate("(element) => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_a_keyboard_user_adds_a_sandbox_connector_enables_it_and_removes_it(world, page, signed_in, axe_check):
    """Given org A's admin on its connectors page, when they add a connector without a name, the error is named;
    with a name, the sandbox connector is added disabled and they land on its settings; back on the list they
    enable it, then remove it after confirming, and find it again under "Show removed connectors". Axe finds
    nothing in any state of the connectors pages."""
    signed_in(world.admin_a)
    page.goto("/orgs/org-a/connectors")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connectors of Organization A")
    axe_check(page)

    _tab_to(page, page.get_by_role("link", name="Add a connector"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a connector to Organization A")
    expect(page.locator("#provider")).to_have_value("sandbox")
    axe_check(page)
    _tab_to(page, "#submit")
    page.keyboard.press("Enter")
    expect(page.locator("#error-summary")).to_contain_text("Enter a name for the connector.")
    expect(page.locator("#name")).to_have_attribute("aria-describedby", "name-error")
    axe_check(page)

    _tab_to(page, "#name")
    page.keyboard.type("Trial sandbox")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Trial sandbox is added, disabled.")
    db.session.rollback()  # a fresh snapshot: the server added it
    added = db.session.scalar(sa.select(Connector).where(Connector.name == "Trial sandbox"))
    expect(page.locator(f"#enabled-{added.id}")).not_to_be_checked()

    page.goto("/orgs/org-a/connectors")
    row = page.get_by_role("row", name="Trial sandbox")
    expect(row).to_contain_text("Disabled")
    _tab_to(page, f"#enable-{added.id}")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Trial sandbox is enabled.")
    expect(row).to_contain_text("Enabled")
    axe_check(page)

    _tab_to(page, row.get_by_role("link", name="Remove Trial sandbox"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove the connector Trial sandbox?")
    axe_check(page)
    _tab_to(page, "#confirm-remove")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Trial sandbox is removed")
    expect(page.get_by_role("row", name="Trial sandbox")).to_have_count(0)

    _tab_to(page, page.get_by_role("link", name="Show removed connectors"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("row", name="Trial sandbox")).to_contain_text("Removed on")
    axe_check(page)
