"""The organization's audit log in Chromium, by keyboard alone: filtered by action and by who, axe clean."""
from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Locator, Page, expect

from dashboard import audit
from dashboard.extensions import db
from dashboard.models import utcnow
from dashboard.vocabulary import AuditAction


def _tab_to(page: Page, selector: str | Locator) -> None:
    """Press Tab until the element has the focus (the way a keyboard user gets there)."""
    target = page.locator(selector) if isinstance(selector, str) else selector
    for _ in range(60):
        if target.evaluate("(element) => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_a_keyboard_user_filters_the_organizations_log_by_action_then_by_who(world, new_page, signed_in, axe_check):
    """Given org A's log with a settings change by its admin and a token created by the global admin (and org B's
    entry), when org A's admin picks "API token created" and applies it by keyboard, only the token's entry is
    listed and the address bar keeps the filter; when they clear the action and type "admin-a" as who, only their
    own change is listed. Org B's entry is never shown; axe finds nothing in any state."""
    now = utcnow()
    audit.record(AuditAction.SETTINGS_CHANGED, organization_id=world.org_a.id, actor=world.admin_a,
                 target=("organization", world.org_a.id, "Organization A"), detail={"error_threshold": [10, 25]},
                 at=now - timedelta(hours=2))
    audit.record(AuditAction.TOKEN_CREATED, organization_id=world.org_a.id, actor=world.global_admin,
                 target=("token", 1, "Orchestrator"), at=now - timedelta(hours=1))
    audit.record(AuditAction.SETTINGS_CHANGED, organization_id=world.org_b.id, actor=world.admin_b,
                 target=("organization", world.org_b.id, "Organization B"), at=now)
    db.session.commit()
    page = signed_in(world.admin_a, on=new_page(locale="en-US"))
    page.goto("/orgs/org-a/audit")
    table = page.get_by_role("region", name="2 entries match the filters; 2 shown on this page. Newest first.")
    expect(table.get_by_role("row")).to_have_count(3)
    expect(page.get_by_text("Organization B")).to_have_count(0)
    axe_check(page)

    _tab_to(page, "#audit-action")
    page.keyboard.type("API token c")  # a closed select picks the option its label starts with
    expect(page.locator("#audit-action")).to_have_value("token_created")
    _tab_to(page, "#audit-apply")
    page.keyboard.press("Enter")
    rows = page.locator("#audit-entries tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("API token created: Orchestrator")
    expect(page).to_have_url(re.compile(r"/orgs/org-a/audit\?action=token_created$"))
    axe_check(page)

    _tab_to(page, "#audit-action")
    page.keyboard.type("All")
    _tab_to(page, "#audit-who")
    page.keyboard.type("admin-a")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Alert settings changed: Organization A")
    expect(rows.first).to_contain_text("error_threshold: 10 → 25")
    expect(page.locator("#sr-status")).to_have_text("1 entry matches the filters")
    axe_check(page)
