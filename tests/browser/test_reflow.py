"""Reflow (WCAG 1.4.10) at 320 px and at 200 % zoom: on every page no element is wider than the viewport
(sideways scrolling only inside a table's labelled, focusable wrapper), the open notification tray lies wholly
inside the viewport and never covers the focused element (2.4.11), and axe still finds nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from redis import Redis
from rq import Worker

from dashboard.extensions import db
from dashboard.models import SyncRecord, utcnow
from tests import factories
from tests.alerting import alerts, run

VIEWPORTS = {
    "320 px": {"viewport": {"width": 320, "height": 640}},
    "200 % zoom": {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2},  # 1280 x 800 at 200 %
}
LONG_ERROR = "The ledger answered 422 at https://ledger.example/api/v2/voucher?sendToLedger=true&dateFrom=2026-11-01: " \
             "mapping_for_account_number_7140_is_missing_in_the_chart_of_accounts_of_this_company"

# Everything wider than the viewport, except what scrolls inside a labelled, focusable region; and each such
# scrolling region that has no name.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  if (document.documentElement.scrollWidth > width) {
    found.push(`the page is ${document.documentElement.scrollWidth} px wide`);
  }
  const scrollsInside = (el) => {
    const region = el.parentElement && el.parentElement.closest("[role=region][tabindex='0']");
    return region && ["auto", "scroll"].includes(getComputedStyle(region).overflowX);
  };
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height === 0 || scrollsInside(el)) { continue; }
    if (box.left < -0.5 || box.right > width + 0.5) {
      found.push(`${el.nodeName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.className ? "." + el.className : ""}` +
                 ` spans ${Math.round(box.left)}..${Math.round(box.right)} px`);
    }
  }
  for (const region of document.querySelectorAll("[role=region][tabindex='0']")) {
    const label = region.getAttribute("aria-labelledby");
    const named = region.getAttribute("aria-label") || (label && document.getElementById(label));
    if (region.scrollWidth > region.clientWidth && !named) { found.push(`an unnamed scrolling region: ${region.outerHTML.slice(0, 80)}`); }
  }
  return found.slice(0, 8);
}"""


@pytest.fixture()
def pages(world, redis_url) -> dict[str, list[str]]:
    """The pages each user sees, over data that makes them wide: an alert over records with long errors,
    their history, notifications, a connector failing since yesterday, and a registered worker with a long name."""
    records = [factories.record(world.connector_a, record_type="mileage_claim", source_ref=f"MIL-2026-{i:05d}")
               for i in range(3)]
    db.session.commit()
    # Failing since yesterday: the connector's badge then carries a date too (its widest form).
    for ago in (timedelta(days=1, minutes=30), timedelta(minutes=20), timedelta(minutes=10)):
        run(world.connector_a, [(r, "account_mapping_missing") for r in records], at=utcnow() - ago)
    for r in records:
        db.session.get(SyncRecord, r.id).last_error_message = LONG_ERROR
    db.session.commit()
    assert alerts()
    connection = Redis.from_url(redis_url)
    worker = Worker(["alerts", "sync"], connection=connection, name="3f2b9c1d8e7a4b6c9d0e1f2a3b4c5d6e")
    worker.register_birth()
    worker.set_state("idle")
    yield {
        "admin_a": ["/orgs/org-a", "/orgs/org-a/integration", f"/orgs/org-a/integration/records/{records[0].id}",
                    "/orgs/org-a/alerts", "/notifications", "/orgs/org-a/settings"],
        "global_admin": ["/platform", "/platform/settings"],
    }
    worker.register_death()


def _tray_problems(page: Page) -> list[str]:
    """Open the tray: it must lie wholly inside the viewport. Closes it again with Escape."""
    page.locator("#tray-button").click()
    panel = page.locator("#tray-panel")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    problems = []
    if box["x"] < 0 or box["x"] + box["width"] > size["width"] or box["y"] < 0 or box["y"] + box["height"] > size["height"]:
        problems.append(f"the tray spans x {box['x']:.0f}..{box['x'] + box['width']:.0f}, "
                        f"y {box['y']:.0f}..{box['y'] + box['height']:.0f} in {size['width']} x {size['height']}")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    return problems


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_no_page_is_wider_than_the_viewport_and_the_tray_fits(pages, world, new_page, signed_in, axe_check,
                                                              viewport: str):
    """Given a narrow viewport, on the sign-in page and every page an org admin and a global admin open,
    nothing is wider than the viewport outside a table's scrolling region, the open tray is wholly inside
    the viewport, and axe finds no violation."""
    problems: list[str] = []

    def check(page: Page, path: str, tray: bool = True) -> None:
        page.goto(path)
        expect(page.locator("h1")).to_be_visible()
        problems.extend(f"{path}: {p}" for p in page.evaluate(OVERFLOW_JS))
        axe_check(page)
        if tray:
            problems.extend(f"{path}: {p}" for p in _tray_problems(page))

    check(new_page(**VIEWPORTS[viewport]), "/login", tray=False)
    for who, paths in pages.items():
        page = signed_in(getattr(world, who), on=new_page(**VIEWPORTS[viewport]))
        for path in paths:
            check(page, path)
    assert not problems, "\n".join(problems)


def _overlaps(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


TAB_STOP = "() => { const b = document.activeElement.getBoundingClientRect(); " \
           "return {id: document.activeElement.id, text: document.activeElement.textContent.trim().slice(0, 40), " \
           "x: b.x, y: b.y, width: b.width, height: b.height}; }"


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_open_tray_never_covers_the_focused_element(pages, world, new_page, signed_in,
                                                       viewport: str) -> None:
    """Given the open tray on the integration page, at every Tab stop forwards and backwards either the focused
    element is inside the tray or the tray is closed or does not overlap it."""
    page = signed_in(world.admin_a, on=new_page(**VIEWPORTS[viewport]))
    page.goto("/orgs/org-a/integration")
    panel = page.locator("#tray-panel")
    for key in ("Tab", "Shift+Tab"):
        page.locator("#tray-button").focus()
        page.keyboard.press("Enter")
        expect(panel).to_be_visible()
        for _ in range(12):
            page.keyboard.press(key)
            stop = page.evaluate(TAB_STOP)
            inside = page.evaluate("document.getElementById('tray-panel').contains(document.activeElement)")
            box = panel.bounding_box()
            if box is not None and not inside:
                assert not _overlaps(stop, box), f"the open tray covers the focused {stop} ({key})"
        page.keyboard.press("Escape")
