"""The Content-Security-Policy holds in Chromium: every page, and the live interactions, without a violation.

Every browser test is watched (conftest's `csp_violations` fails it at teardown); these walk every page and
the status screen's live journey on purpose, and check that the watch sees a violation when there is one.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from dashboard.extensions import db
from dashboard.models import Alert, Notification, utcnow
from tests import factories
from tests.alerting import run
from tests.browser.conftest import wait_live

LIVE_TIMEOUT = 15_000

# Each page once, for its own scripts and styles; the status screen with an alert is the live journey below.
ORG_ADMIN_PAGES = [
    "/",
    "/orgs/org-a",
    "/orgs/org-a/alerts",
    "/orgs/org-a/settings",
    "/orgs/org-a/integration",
    "/orgs/org-a/integration?status=failed",
    "/orgs/org-a/integration/records/{record}",
    "/notifications",
    "/account/password",
    "/no-such-page",
    "/orgs/org-b",
    "/platform",
]
GLOBAL_ADMIN_PAGES = ["/platform", "/platform/settings", "/orgs/org-b/integration"]


@pytest.fixture()
def primed(world):  # type: ignore[no-untyped-def]
    """A record of organization A that failed twice (one more failure raises an alert), and one that failed
    once and so has a history."""
    record = factories.record(world.connector_a, record_type="mileage_claim", source_ref="PRIMED-1")
    db.session.commit()
    for minutes in (30, 20):
        run(world.connector_a, [(record, "account_mapping_missing")], at=utcnow() - timedelta(minutes=minutes))
    return record


def test_every_page_passes_the_policy(world, primed, new_page, signed_in, csp_violations):
    """Given a visitor, an org admin and a global admin, no page they open breaks the policy."""
    visitor = new_page()
    visitor.goto("/login")
    visitor.get_by_role("button", name="Sign in").click()  # the page with its error summary
    expect(visitor.get_by_text("There is a problem")).to_be_visible()
    visitor.goto("/no-such-page")

    page = signed_in(world.admin_a)
    for path in ORG_ADMIN_PAGES:
        response = page.goto(path.format(record=primed.id))
        assert response is not None and response.status in (200, 403, 404), path
        page.wait_for_load_state("load")
    admin = signed_in(world.global_admin, on=new_page())
    for path in GLOBAL_ADMIN_PAGES:
        response = admin.goto(path)
        assert response is not None and response.status == 200, path
    wait_live(admin)
    assert csp_violations == []


def test_live_status_screen_journey_passes_the_policy(world, primed, signed_in, csp_violations):
    """Given an org admin on the status screen: the tray opens, a live alert arrives and refreshes the panels,
    a record's history expands, the retry dialog opens and is cancelled; nothing breaks the policy."""
    page = signed_in(world.admin_a)
    page.goto("/orgs/org-a/integration")
    wait_live(page)

    tray = page.get_by_role("button", name="Notifications, 0 unread")
    tray.click()
    expect(page.locator("#tray-panel")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#tray-panel")).to_be_hidden()

    third = utcnow() - timedelta(minutes=10)
    run(world.connector_a, [(primed, "account_mapping_missing")], at=third)  # the third failure
    expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible(timeout=LIVE_TIMEOUT)
    alert = db.session.scalars(sa.select(Alert)).one()
    expect(page.locator("#alerts-panel")).to_contain_text(alert.title, timeout=LIVE_TIMEOUT)
    expect(page.locator("#records")).to_contain_text("Failures in a row: 3", timeout=LIVE_TIMEOUT)
    page.get_by_role("button", name="Notifications, 1 unread").click()
    expect(page.locator("#tray-list .notification-title").first).to_contain_text("mileage claim")
    page.keyboard.press("Escape")

    history = page.locator(f"#history-{primed.id}")
    page.locator(f"#history-toggle-{primed.id}").click()
    expect(history).to_be_visible()
    expect(history.get_by_text("Attempt failed: Account mapping missing")).to_have_count(3)
    page.locator(f"#history-toggle-{primed.id}").click()
    expect(history).to_be_hidden()

    page.locator(f"#select-{primed.id}").check()
    page.get_by_role("button", name="Retry selected records").click()
    dialog = page.get_by_role("dialog", name="Please confirm")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    note = db.session.scalars(sa.select(Notification)).one()
    page.goto(f"/notifications/{note.id}")  # the alert view
    expect(page.get_by_role("heading", name="Records of the alert")).to_be_visible()
    assert csp_violations == []


def test_the_watch_sees_a_violation(world, page: Page, csp_violations):
    """The policy is enforced, and the watch reports a breach (then forgets it, so this test passes)."""
    page.goto("/login")
    page.evaluate("""() => {
      const style = document.createElement("style");
      style.textContent = "body { color: rgb(255, 0, 0); }";
      document.head.append(style);
    }""")
    assert page.evaluate("getComputedStyle(document.body).color") != "rgb(255, 0, 0)"
    for _ in range(50):  # the report comes back through a binding, a moment later
        if csp_violations:
            break
        page.wait_for_timeout(50)
    assert any("style-src" in v for v in csp_violations), csp_violations
    csp_violations.clear()
