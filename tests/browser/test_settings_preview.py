"""The settings preview in Chromium: by keyboard alone, announced in a polite status region, axe clean.

The replay itself is tested elsewhere (tests/integration/test_settings_preview.py, test_replay.py); here it is
replaced by a canned report so the page's behaviour is what is measured.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from rq import SimpleWorker

from dashboard.alerts import preview
from dashboard.alerts.replay import ReplayedAlert, ReplayedNotification, ReplayReport
from dashboard.extensions import db, redis_ext
from dashboard.queues import alerts_queue

STATUS_RECORDER = """
window.__previewStatus = [];
document.addEventListener('DOMContentLoaded', () => {
  const region = document.getElementById('preview-status');
  new MutationObserver(() => {
    if (region.textContent) { window.__previewStatus.push(region.textContent); }
  }).observe(region, {subtree: true, childList: true, characterData: true});
});
"""
PREVIEW_BUTTON = "Preview this change over the last 30 days"


def canned_replay(organizations: list[str] | None, start: datetime, end: datetime,
                  settings: dict[str, int] | None = None) -> ReplayReport:
    """Two alerts a day told to the admin with the default threshold; none with a higher one."""
    report = ReplayReport(organizations=organizations or [], start=start, end=end, settings=dict(settings or {}))
    if (settings or {}).get("threshold", 10) > 10:
        return report
    for day in range(3):
        opened = start + timedelta(days=day, hours=9)
        report.alerts.append(ReplayedAlert("org-a", "error_threshold", "Errors", opened, opened + timedelta(hours=2),
                                           False))
        for event, at in (("raised", opened), ("resolved", opened + timedelta(hours=2))):
            report.notifications.append(ReplayedNotification("admin-a@example.org", False, "org-a", event, "Errors",
                                                             at, True))
    return report


@pytest.fixture()
def settings_page(world, signed_in, page: Page, monkeypatch: pytest.MonkeyPatch) -> Page:
    monkeypatch.setattr(preview, "replay", canned_replay)
    alerts_queue().empty()
    page.add_init_script(STATUS_RECORDER)
    signed_in(world.admin_a)
    page.goto("/orgs/org-a/settings")
    return page


def _run_jobs() -> None:
    SimpleWorker([alerts_queue()], connection=redis_ext.client).work(burst=True)


def test_a_keyboard_user_previews_a_change_and_hears_the_result(settings_page: Page, axe_check, world):
    """Given the settings page, when a keyboard user types a higher threshold and presses the preview button,
    the status region says it is computing, then the result; the comparison appears, focus stays on the button,
    nothing is saved, and axe finds nothing."""
    page = settings_page
    axe_check(page)
    threshold = page.locator("#error_threshold")
    threshold.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("40")
    button = page.get_by_role("button", name=PREVIEW_BUTTON)
    while not page.evaluate("document.activeElement.id === 'preview-button'"):
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    expect(page.locator("#preview-status")).to_have_text("Computing the preview…")
    _run_jobs()
    status = page.locator("#preview-status")
    expect(status).to_contain_text("Preview ready: with your values, 0 alerts")
    expect(status).to_contain_text("with the saved settings, 3 alerts and at most 2 notifications.")
    table = page.get_by_role("table")
    expect(table.get_by_role("row", name="Alerts raised")).to_contain_text("3")
    expect(button).to_be_focused()
    assert page.evaluate("window.__previewStatus") == [
        "Computing the preview…", status.inner_text()], "each state is announced once, not at every poll"
    db.session.expire_all()
    assert world.org_a.error_threshold == 10
    axe_check(page)


def test_a_bad_value_shows_the_forms_errors_instead_of_a_preview(settings_page: Page, axe_check):
    """Given a re-arm level above the threshold, when the user previews it, the error summary takes focus and
    names the problem, the field is marked invalid, and no preview is computed."""
    page = settings_page
    page.get_by_label("Re-arm level", exact=False).fill("12")
    page.get_by_role("button", name=PREVIEW_BUTTON).press("Enter")

    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("The re-arm level (12) must be below the error threshold (10)")
    expect(summary).to_be_focused()
    expect(page.get_by_label("Re-arm level", exact=False)).to_have_attribute("aria-invalid", "true")
    assert [j for j in alerts_queue().job_ids if j.startswith("preview-")] == []
    axe_check(page)

    page.get_by_label("Re-arm level", exact=False).fill("")
    page.get_by_role("button", name=PREVIEW_BUTTON).press("Enter")
    expect(page.locator("#preview-status")).to_have_text("Computing the preview…")
    expect(page.locator("#error-summary")).to_have_count(0)
    expect(page.get_by_role("button", name=PREVIEW_BUTTON)).to_be_focused()
