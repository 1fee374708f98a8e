"""Live refreshes of the records table never move focus or scroll (issue 15, WCAG 2.4.3 and 3.2.1).

The tests publish the live event themselves instead of waiting for the demo's sync: a refresh that changes
nothing changes nothing in the DOM, one that changes a row leaves focus (on the heading, on a row's button, or
nowhere) and the scroll position where they were, and after a row's Retry focus stays in that row while the
result is announced. The platform page's tables refresh the same way."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.exc import OperationalError

from dashboard.extensions import db
from dashboard.live.publish import PLATFORM_CHANNEL, organization_channel, publish_now
from dashboard.models import SyncRecord, utcnow
from dashboard.vocabulary import LiveEvent
from tests import status_factories as sf
from tests.browser.conftest import ANNOUNCEMENT_RECORDER, wait_for, wait_live

SCREEN = "/orgs/org-a/integration"
ROWS = "#records tbody tr[id^='record-']"
REFRESH_TIMEOUT_MS = 10_000  # the table waits 2 s after the event, then fetches

# Every mutation inside #records, and whether #records is still the element the page loaded.
WATCH_RECORDS = """() => {
  const records = document.getElementById("records");
  window.__records = records;
  window.__mutations = [];
  new MutationObserver((found) => {
    for (const m of found) { window.__mutations.push(`${m.type} ${m.target.nodeName}#${m.target.id || ""}`); }
  }).observe(records, {subtree: true, childList: true, attributes: true, characterData: true});
  new MutationObserver((found) => {
    for (const m of found) {
      if ([...m.removedNodes].includes(records)) { window.__mutations.push("the records section was replaced"); }
    }
  }).observe(records.parentNode, {childList: true});
}"""


@dataclass
class Table:
    world: object
    failed: list[SyncRecord]


@pytest.fixture()
def table(world) -> Table:
    """Thirty failed records: a table taller than the window, every row with a Retry button."""
    start = utcnow() - timedelta(days=2)
    failed = [sf.failed(world.connector_a, source_ref=f"FAIL-{i + 1:02d}", approved_at=start + timedelta(minutes=i))
              for i in range(30)]
    db.session.commit()
    return Table(world=world, failed=failed)


def _open(page: Page, query: str = "") -> None:
    page.goto(SCREEN + query)
    expect(page.locator(ROWS)).to_have_count(30)
    wait_live(page)


def _publish_records_changed(world) -> None:  # type: ignore[no-untyped-def]
    publish_now(organization_channel(world.org_a.id), LiveEvent.RECORDS_CHANGED.value, {"batch_id": 1})


def _row_ids(page: Page) -> list[int]:
    return page.locator(ROWS).evaluate_all("rows => rows.map(r => Number(r.id.slice('record-'.length)))")


def _change_error(record_id: int) -> None:
    """Give a record another last error, as a sync would; its row's Last error cell changes."""
    db.session.get(SyncRecord, record_id).last_error_code = "invalid_vat_code"
    db.session.commit()


def _refresh_with_a_change(page: Page, world, record_id: int) -> None:  # type: ignore[no-untyped-def]
    _change_error(record_id)
    _publish_records_changed(world)
    expect(page.locator(f"#record-{record_id}")).to_contain_text("Invalid VAT code", timeout=REFRESH_TIMEOUT_MS)
    page.wait_for_timeout(300)  # anything a late script would still do to focus or scroll


def _sync(connector, record_id: int) -> None:  # type: ignore[no-untyped-def]
    """Log the record's successful push, as the sync job would. SQLite refuses a read transaction's upgrade
    to a write at once while the server writes (its session bookkeeping), so that is tried again."""
    for _ in range(10):
        try:
            sf.push(connector, {record_id: None})
            return
        except OperationalError:
            db.session.rollback()
            time.sleep(0.2)
    raise AssertionError("the database stayed locked")


def _place(page: Page, keep: bool = False) -> dict:
    """Where the reader is: the focused element (with `keep`, kept as window.__focused), its box, the scroll."""
    return page.evaluate("""(keep) => {
      if (keep) { window.__focused = document.activeElement; }
      const box = document.activeElement.getBoundingClientRect();
      return {focused: document.activeElement.id || document.activeElement.nodeName, top: box.top,
              scrollY: window.scrollY};
    }""", keep)


def test_a_refresh_that_changes_nothing_changes_nothing_in_the_dom(table, signed_in):
    """Given the records table, when a records-changed event arrives and nothing changed, the table is
    fetched again and no node, attribute or text inside #records changes (nor is #records replaced); a
    refresh that does change a row changes that row in the same element."""
    page = signed_in(table.world.admin_a)
    _open(page)
    page.evaluate(WATCH_RECORDS)
    with page.expect_response(lambda r: "/integration/records" in r.url, timeout=REFRESH_TIMEOUT_MS):
        _publish_records_changed(table.world)
    page.wait_for_timeout(500)
    assert page.evaluate("window.__mutations") == []
    assert page.evaluate("document.getElementById('records') === window.__records")

    changed = _row_ids(page)[5]
    _refresh_with_a_change(page, table.world, changed)
    mutations = page.evaluate("window.__mutations")
    assert mutations and "the records section was replaced" not in mutations
    assert page.evaluate("document.getElementById('records') === window.__records")


@pytest.mark.parametrize("where", ["heading", "row button", "nowhere"])
def test_a_live_refresh_keeps_focus_and_scroll(table, signed_in, where):
    """Given the reader scrolled into the table with focus on the Records heading, on a row's History button,
    or nowhere, when a live refresh changes a row further down, focus is on the same element and the page
    has not scrolled."""
    page = signed_in(table.world.admin_a)
    _open(page)
    ids = _row_ids(page)
    if where == "heading":
        page.locator("#records-title").focus()
        page.evaluate("window.scrollTo(0, document.getElementById('records-title').getBoundingClientRect().top"
                      " + window.scrollY - 200)")
    elif where == "row button":
        button = page.locator(f"#history-toggle-{ids[10]}")
        button.focus()
        button.evaluate("b => b.scrollIntoView({block: 'center'})")
    else:
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.locator(f"#record-{ids[10]}").evaluate("r => r.scrollIntoView({block: 'start'})")
    before = _place(page, keep=True)
    assert before["scrollY"] > 300, "the reader should be scrolled down into the table"

    _refresh_with_a_change(page, table.world, ids[20])
    after = _place(page)
    assert page.evaluate("document.activeElement === window.__focused"), (before, after)
    assert after["focused"] == before["focused"]
    assert after["scrollY"] == before["scrollY"]
    assert abs(after["top"] - before["top"]) < 1


def test_a_refresh_that_changes_a_row_above_keeps_the_focused_button_in_place(table, signed_in):
    """Given focus on a row's Retry button mid-table, when rows above it change, the button keeps focus and
    its place on the screen."""
    page = signed_in(table.world.admin_a)
    _open(page)
    ids = _row_ids(page)
    button = page.locator(f"#retry-{ids[15]}")
    button.focus()
    button.evaluate("b => b.scrollIntoView({block: 'center'})")
    before = _place(page, keep=True)
    for record_id in ids[2:5]:
        _change_error(record_id)
    _refresh_with_a_change(page, table.world, ids[5])
    after = _place(page)
    assert page.evaluate("document.activeElement === window.__focused")
    assert abs(after["top"] - before["top"]) < 1, (before, after)


@pytest.mark.parametrize("view", ["all records", "records that need attention"])
def test_after_a_rows_retry_focus_stays_next_to_the_button_and_the_result_is_announced(table, signed_in, view):
    """Given focus on a failed row's Retry button, when the admin presses it and the sync job then syncs the
    record, the request and the result are announced and the table refreshes without scrolling: with all
    records shown the row stays and focus is on its History button, beside the Retry button that is gone;
    in the default view the synced row leaves and focus is on the Retry button of the row that took its
    place."""
    page = signed_in(table.world.admin_a)
    page.add_init_script(ANNOUNCEMENT_RECORDER)
    _open(page, "?status=all" if view == "all records" else "")
    ids = _row_ids(page)
    record_id = ids[12]
    retry = page.locator(f"#retry-{record_id}")
    retry.focus()
    retry.evaluate("b => b.scrollIntoView({block: 'center'})")
    before = _place(page, keep=True)

    page.keyboard.press("Enter")
    expect(page.locator("#action-result")).to_contain_text("Retry requested for 1 record.")
    wait_for(page, "window.__announced.some(t => t.includes('Retry requested for 1 record.'))")
    expect(retry).to_be_focused()

    _sync(table.world.connector_a, record_id)
    expect(page.locator("#action-result")).to_contain_text("1 synced, 0 failed again", timeout=REFRESH_TIMEOUT_MS)
    expect(retry).to_have_count(0, timeout=REFRESH_TIMEOUT_MS)
    wait_for(page, "window.__announced.some(t => t.includes('1 synced, 0 failed again'))")
    if view == "all records":
        expect(page.locator(f"#record-{record_id}")).to_contain_text("Synced")
        expect(page.locator(f"#history-toggle-{record_id}")).to_be_focused()
    else:
        expect(page.locator(f"#record-{record_id}")).to_have_count(0)
        expect(page.locator(f"#retry-{ids[13]}")).to_be_focused()
    after = _place(page)
    # The result above the table grew meanwhile; what counts is that the row kept its place on the screen.
    assert abs(after["top"] - before["top"]) < 40, (before, after)


def test_after_excluding_a_record_the_screen_it_returns_to_announces_the_result(table, signed_in):
    """Given a failed row, when the admin excludes it on its record page, the screen they return to says
    "Record … is excluded from sync." in the status live region, not only on the page."""
    page = signed_in(table.world.admin_a)
    page.add_init_script(ANNOUNCEMENT_RECORDER)
    _open(page)
    record = next(r for r in table.failed if r.id == _row_ids(page)[3])
    page.get_by_role("link", name=f"Exclude… {record.source_ref}").click()
    page.get_by_label("Reason for excluding this record").fill("Booked by hand in the ledger")
    with page.expect_navigation():
        page.get_by_role("button", name="Exclude the record").click()
    expect(page.locator(ROWS).first).to_be_visible()
    wait_for(page, "t => window.__announced.includes(t)", arg=f"Note: Record {record.source_ref} is excluded from sync.")


def test_a_platform_refresh_keeps_focus_on_a_link_in_the_organizations_table(world, signed_in):
    """Given a global admin on the platform page with focus on an organization's Status link (links there have
    no ids, so a swap would drop focus to the page), when a record fails and platform-changed arrives, the
    table shows the new count and the same link still has focus."""
    page = signed_in(world.global_admin)
    expect(page.locator("#platform-organizations")).to_be_visible()
    wait_live(page)
    link = page.get_by_role("link", name="Status of Organization A")
    link.focus()
    page.evaluate("window.__focused = document.activeElement")
    sf.failed(world.connector_a, source_ref="PLAT-1")
    db.session.commit()
    publish_now(PLATFORM_CHANNEL, LiveEvent.PLATFORM_CHANGED.value, {"alert_id": 1})
    row = page.locator("#platform-organizations tr", has=page.get_by_role("link", name="Organization A", exact=True))
    expect(row.locator("td").nth(3)).to_have_text("1", timeout=REFRESH_TIMEOUT_MS)
    assert page.evaluate("document.activeElement === window.__focused")


def test_a_refresh_after_an_action_that_closes_a_history_row_puts_focus_on_its_button(table, signed_in):
    """Given a row's history open with focus inside it, when an action's answer refreshes the table (which
    comes back with every history closed), focus moves to that row's History button, not to the page."""
    page = signed_in(table.world.admin_a)
    _open(page)
    record_id = _row_ids(page)[8]
    toggle = page.locator(f"#history-toggle-{record_id}")
    toggle.click()
    inside = page.locator(f"#history-{record_id} [role=region][tabindex='0']")
    inside.focus()
    with page.expect_response(lambda r: "/integration/records?" in r.url or r.url.endswith("/integration/records"),
                              timeout=REFRESH_TIMEOUT_MS):
        page.evaluate("htmx.trigger(document.body, JSON.parse(document.body.dataset.liveEvents).RECORDS_CHANGED)")
    expect(page.locator(f"#history-{record_id}")).to_be_hidden()
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "false")
