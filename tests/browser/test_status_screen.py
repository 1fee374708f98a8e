"""The integration status screen in Chromium: filters, sort, keyset pages, history rows, the alert view,
retry through the confirm dialog with a real RQ worker, exclusion, and axe on every page it links to."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from dashboard.extensions import db
from dashboard.models import SyncRecord, utcnow
from tests import factories
from tests import status_factories as sf
from tests.alerting import affected_ids, alerts, run
from tests.browser.conftest import ANNOUNCEMENT_RECORDER, wait_for

SCREEN = "/orgs/org-a/integration"
ROWS = "#records tbody tr[id^='record-']"


@dataclass
class Screen:
    """Organization A's records: a real rule-1 alert over three mileage claims, and records of every status."""

    world: object
    alert_id: int
    alerted: list[SyncRecord]
    vat_failed: list[SyncRecord]
    pending: list[SyncRecord]
    synced: list[SyncRecord]
    excluded: list[SyncRecord]

    @property
    def every_id(self) -> set[int]:
        return {r.id for group in (self.alerted, self.vat_failed, self.pending, self.synced, self.excluded)
                for r in group}


def _alerted(connector, n: int = 3, record_type: str = "mileage_claim", error_code: str = "account_mapping_missing"):
    """`n` records that fail three times in a row through the real sync-log writer and alert engine."""
    records = [factories.record(connector, record_type=record_type, amount_minor=900_00 + i * 100,
                                source_ref=f"MIL-{i + 1}") for i in range(n)]
    db.session.commit()
    for minutes in (30, 20, 10):
        run(connector, [(r, error_code) for r in records], at=utcnow() - timedelta(minutes=minutes))
    alert = alerts(rule="consecutive_failures", record_type=record_type)[-1]
    assert affected_ids(alert) == {r.id for r in records}
    return alert, records


def _build(world, pending: int = 52) -> Screen:
    alert, alerted = _alerted(world.connector_a)
    c = world.connector_a
    vat_failed = [sf.failed(c, error_code="invalid_vat_code", source_ref=f"VAT-{i + 1}", amount_minor=50_00 + i)
                  for i in range(2)]
    waiting = sf.records(c, pending, start=utcnow() - timedelta(hours=2))
    synced = [factories.record(c, status="synced", source_ref=f"OK-{i + 1}") for i in range(2)]
    excluded = [factories.record(c, status="excluded", excluded_reason="Booked by hand", source_ref="EXC-1")]
    db.session.commit()
    return Screen(world=world, alert_id=alert.id, alerted=alerted, vat_failed=vat_failed, pending=waiting,
                  synced=synced, excluded=excluded)


@pytest.fixture()
def screen(world) -> Screen:
    return _build(world)


@pytest.fixture()
def small_screen(world) -> Screen:
    """The alert and a few records of each other status: one page."""
    return _build(world, pending=3)


def row_ids(page: Page) -> list[int]:
    return page.locator(ROWS).evaluate_all("rows => rows.map(r => Number(r.id.slice('record-'.length)))")


def caption(page: Page):
    return page.locator("#records-caption")


# Filters, with and without JavaScript.


def test_filter_by_status_and_error_code_without_javascript(screen, new_page, signed_in):
    """Given a browser without JavaScript, the filter form is a plain GET form: the URL keeps the filters
    and the table holds exactly the matching records."""
    page = signed_in(screen.world.admin_a, on=new_page(java_script_enabled=False))
    page.goto(SCREEN)
    page.get_by_label("Status", exact=True).select_option("failed")
    page.get_by_label("Last error").select_option("invalid_vat_code")
    page.get_by_role("button", name="Show records").click()
    expect(page).to_have_url(re.compile(r"status=failed"))
    assert "error_code=invalid_vat_code" in page.url
    expect(caption(page)).to_contain_text("2 records match the filters")
    assert set(row_ids(page)) == {r.id for r in screen.vat_failed}
    expect(page.get_by_label("Status", exact=True)).to_have_value("failed")
    expect(page.get_by_label("Last error")).to_have_value("invalid_vat_code")


def test_filter_with_htmx_pushes_the_url_and_announces_the_count(screen, signed_in):
    """Given the enhanced screen, filtering swaps the table in place, pushes the screen's URL with the
    filters, and announces the result count in the status live region."""
    page = signed_in(screen.world.admin_a)
    page.goto(SCREEN + "?status=all")
    expect(caption(page)).to_contain_text(f"{len(screen.every_id)} records match")
    page.get_by_label("Status", exact=True).select_option("failed")
    page.get_by_role("button", name="Show records").click()
    expect(page).to_have_url(re.compile(r"/orgs/org-a/integration\?status=failed$"))
    expect(page.locator("#sr-status")).to_have_text("5 records")
    expect(page.get_by_role("button", name="Show records")).to_be_focused()  # the swap kept focus
    assert set(row_ids(page)) == {r.id for r in screen.alerted + screen.vat_failed}

    page.get_by_label("Last error").select_option("account_mapping_missing")
    page.get_by_role("button", name="Show records").click()
    expect(page).to_have_url(re.compile(r"status=failed&error_code=account_mapping_missing$"))
    expect(page.locator("#sr-status")).to_have_text("3 records")
    assert set(row_ids(page)) == {r.id for r in screen.alerted}

    page.reload()  # the URL alone brings the same table back
    expect(caption(page)).to_contain_text("3 records match the filters")
    expect(page.get_by_label("Last error")).to_have_value("account_mapping_missing")

    page.go_back()  # and the back button the previous one
    expect(page).to_have_url(re.compile(r"/orgs/org-a/integration\?status=failed$"))
    expect(caption(page)).to_contain_text("5 records match the filters")
    expect(page.get_by_label("Last error")).to_have_value("")


def test_sort_by_amount_sets_aria_sort_and_keeps_focus_on_the_button(screen, signed_in):
    """Given the table, when the Amount header's button is pressed, the rows are sorted largest first,
    the header says so with aria-sort, and focus stays on the (new) sort button; pressing it again flips."""
    page = signed_in(screen.world.admin_a)
    page.goto(f"{SCREEN}?status=failed")
    header = page.locator("#records th", has=page.locator("#sort-amount"))
    expect(header).not_to_have_attribute("aria-sort", re.compile("."))
    page.locator("#sort-amount").focus()
    page.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(page).to_have_url(re.compile(r"sort=-amount"))
    expect(page.locator("#sort-amount")).to_be_focused()
    failed = sorted(screen.alerted + screen.vat_failed, key=lambda r: (-r.amount_minor, -r.id))
    assert row_ids(page) == [r.id for r in failed]

    page.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#sort-amount")).to_be_focused()
    assert row_ids(page)[0] == min(failed, key=lambda r: r.amount_minor).id


def test_keyset_pages_forward_and_back(screen, signed_in):
    """Given more pending records than a page holds, Next and Previous walk the keyset pages with the
    filter kept in the URL: no record is skipped or repeated, Previous gives the first page back, and the
    back button returns to the second."""
    page = signed_in(screen.world.admin_a)
    page.goto(f"{SCREEN}?status=pending")
    first = row_ids(page)
    assert len(first) == 50
    pages = page.get_by_role("navigation", name="Pages")
    expect(pages.get_by_role("link", name="First page")).to_have_attribute("aria-current", "page")
    pages.get_by_role("link", name="Next page").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"\?status=pending&after="))
    expect(page.locator("#records-title")).to_be_focused()  # the Next link is gone; focus goes to the heading
    expect(pages.get_by_role("link", name="Previous page")).to_be_visible()
    expect(pages.get_by_role("link", name="Next page")).to_have_count(0)
    expect(pages.get_by_role("link", name="First page")).not_to_have_attribute("aria-current", "page")
    second = row_ids(page)
    assert len(second) == len(screen.pending) - 50
    assert not set(first) & set(second)
    assert set(first) | set(second) == {r.id for r in screen.pending}
    second_url = page.url

    pages.get_by_role("link", name="Previous page").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"\?status=pending&before="))
    expect(page.locator("#records-title")).to_be_focused()
    expect(pages.get_by_role("link", name="First page")).to_have_attribute("aria-current", "page")
    assert row_ids(page) == first

    page.go_back()
    expect(page).to_have_url(second_url)
    expect(pages.get_by_role("link", name="Next page")).to_have_count(0)
    assert row_ids(page) == second


# The history row.


def test_history_row_expands_and_collapses(screen, signed_in, axe_check):
    """Given a failed record, its History button is a disclosure: it toggles aria-expanded and the row,
    which shows the record's attempts; axe finds nothing with the row open."""
    page = signed_in(screen.world.admin_a)
    page.goto(f"{SCREEN}?status=failed&error_code=account_mapping_missing")
    record = screen.alerted[0]
    button = page.locator(f"#history-toggle-{record.id}")
    row = page.locator(f"#history-{record.id}")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(row).to_be_hidden()
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(row).to_be_visible()
    history = row.locator("table.history-table")
    expect(history.locator("caption")).to_contain_text(f"History of {record.source_ref}")
    expect(history.get_by_text("Attempt failed: Account mapping missing")).to_have_count(3)
    axe_check(page)
    button.click()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(row).to_be_hidden()


# The alert view, retry and exclusion.


def test_alert_view_lists_exactly_the_alerts_records(screen, signed_in, axe_check):
    """Given a real rule-1 alert, `?alert=<id>` shows its summary above a table holding exactly its
    affected records, and axe finds nothing."""
    page = signed_in(screen.world.admin_a)
    page.goto(f"{SCREEN}?alert={screen.alert_id}")
    expect(page.get_by_role("heading", name="Records of the alert")).to_be_visible()
    summary = page.locator(".alert-summary")
    expect(summary).to_contain_text("3 mileage claims failed 3 times in a row")
    expect(summary).to_contain_text("Account mapping missing")
    assert set(row_ids(page)) == {r.id for r in screen.alerted}
    axe_check(page)


def test_retry_an_alerts_records_through_the_dialog_until_synced(small_screen, signed_in, rq_worker, axe_check):
    """Given the alert view and a healthy connector, when the admin retries the alert's records and
    confirms in the dialog, progress follows the real sync job until every record reads Synced."""
    connector = small_screen.world.connector_a
    connector.settings = {"scenario": "healthy"}
    db.session.commit()
    page = signed_in(small_screen.world.admin_a)
    page.add_init_script(ANNOUNCEMENT_RECORDER)
    page.goto(f"{SCREEN}?alert={small_screen.alert_id}")
    for record in small_screen.alerted:
        expect(page.locator(f"#record-{record.id} td").nth(6)).to_contain_text("Failed")

    trigger = page.get_by_role("button", name="Retry all 3 failed records of this alert")
    trigger.click()
    dialog = page.get_by_role("dialog", name="Please confirm")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")  # cancelling asks nothing of the server
    expect(dialog).to_be_hidden()
    expect(trigger).to_be_focused()
    expect(page.locator("#action-result")).to_have_text("")

    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Retry all 3 failed records of this alert now?")
    expect(dialog.get_by_role("button", name="Yes, retry")).to_be_focused()
    axe_check(page)
    dialog.get_by_role("button", name="Yes, retry").click()
    expect(dialog).to_be_hidden()
    expect(trigger).to_be_focused()

    result = page.locator("#action-result")
    expect(result).to_contain_text("Retry requested for 3 records.")
    expect(result.get_by_label("Retry progress")).to_be_attached()
    expect(result).to_contain_text("Done: 3 records retried; 3 synced, 0 failed again.")
    for record in small_screen.alerted:
        expect(page.locator(f"#record-{record.id} td").nth(6)).to_contain_text("Synced")
    wait_for(page, "window.__announced.some(t => t.includes('3 synced, 0 failed again'))")
    db.session.rollback()
    assert {db.session.get(SyncRecord, r.id).status for r in small_screen.alerted} == {"synced"}


def test_exclude_a_record_with_a_reason(small_screen, signed_in, axe_check):
    """Given a failed record, its Exclude link leads to the record page; without a reason the page shows
    an error summary (no axe violations either way); with one, the record is excluded and says why."""
    page = signed_in(small_screen.world.admin_a)
    record = small_screen.vat_failed[0]
    page.goto(f"{SCREEN}?status=failed")
    page.get_by_role("link", name=f"Exclude… {record.source_ref}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Record {record.source_ref}")
    axe_check(page)

    page.get_by_role("button", name="Exclude the record").click()
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    expect(summary).to_be_focused()
    expect(page.get_by_label("Reason for excluding this record")).to_have_attribute("aria-invalid", "true")
    axe_check(page)

    page.get_by_label("Reason for excluding this record").fill("Booked by hand in the ledger")
    page.get_by_role("button", name="Exclude the record").click()
    expect(page).to_have_url(re.compile(r"/orgs/org-a/integration\?status=failed$"))
    expect(page.locator(".flash")).to_contain_text(f"Record {record.source_ref} is excluded from sync.")
    expect(page.locator(f"#record-{record.id}")).to_have_count(0)  # no longer failed
    page.goto(f"{SCREEN}?status=excluded")
    expect(page.locator(f"#record-{record.id}")).to_contain_text("Excluded")
    page.locator(f"#history-toggle-{record.id}").click()
    history = page.locator(f"#history-{record.id} table.history-table")
    expect(history.locator("tbody tr").first).to_contain_text("Excluded from sync")
    expect(history.locator("tbody tr").first).to_contain_text("Reason: Booked by hand in the ledger")


# axe on every page the screen belongs with.


def test_status_screen_has_no_axe_violations(screen, signed_in, axe_check):
    page = signed_in(screen.world.admin_a)
    page.goto(SCREEN)
    expect(page.get_by_role("heading", level=1)).to_have_text("Integration status: Organization A")
    axe_check(page)


def test_status_screen_does_not_scroll_sideways_at_320_px(screen, signed_in, axe_check):
    """Given a 320 px wide viewport (400 % zoom), the status screen does not scroll sideways (the wide
    table scrolls inside its focusable, named wrapper) and axe still finds nothing."""
    page = signed_in(screen.world.admin_a)
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(SCREEN)
    expect(page.locator(ROWS).first).to_be_visible()
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the status screen is {widths[0]} px wide in a {widths[1]} px viewport"
    wrapper = page.get_by_role("region", name=re.compile(r"records match the filters"))
    expect(wrapper).to_have_attribute("tabindex", "0")
    assert wrapper.evaluate("el => el.scrollWidth > el.clientWidth"), "the table should scroll in its wrapper"
    axe_check(page)


def test_alerts_page_has_no_axe_violations(small_screen, signed_in, axe_check):
    page = signed_in(small_screen.world.admin_a)
    page.goto("/orgs/org-a/alerts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerts of Organization A")
    expect(page.locator("#alerts-list")).to_contain_text("failed 3 times in a row")
    axe_check(page)


def test_settings_page_has_no_axe_violations_plain_and_with_an_error(world, signed_in, axe_check):
    page = signed_in(world.admin_a)
    page.goto("/orgs/org-a/settings")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alert settings of Organization A")
    axe_check(page)
    field = page.get_by_label(re.compile(r"^Failures in a row"))
    field.fill("99")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    expect(field).to_have_attribute("aria-invalid", "true")
    axe_check(page)


def test_platform_pages_have_no_axe_violations(small_screen, signed_in, axe_check):
    page = signed_in(small_screen.world.global_admin)
    page.goto("/platform")
    expect(page.get_by_role("heading", level=1)).to_have_text("Platform summary")
    axe_check(page)
    page.goto("/platform/settings")
    expect(page.get_by_role("heading", level=1)).to_have_text("Platform settings")
    axe_check(page)


def test_notifications_page_has_no_axe_violations(small_screen, signed_in, axe_check):
    page = signed_in(small_screen.world.admin_a)
    page.goto("/notifications")
    expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")
    expect(page.locator(".notification-page-list")).to_contain_text("failed 3 times in a row")
    axe_check(page)
