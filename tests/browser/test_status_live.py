"""The status screen's panels follow live events without eval: static/js/status.js picks the events of this
organization and sends `status:refresh` / `status:resync` to the panels that name the event they follow."""
from __future__ import annotations

import re
import time
from typing import Iterator

import pytest
from playwright.sync_api import Page, Request

from dashboard.extensions import db, redis_ext
from dashboard.live.publish import organization_channel, publish_now
from dashboard.vocabulary import LiveEvent
from tests import factories
from tests.browser.conftest import wait_live

PANELS = {
    "records": re.compile(r"/orgs/org-a/integration/records(\?|$)"),
    "chart": re.compile(r"/orgs/org-a/integration/chart$"),
    "connectors": re.compile(r"/orgs/org-a/integration/connectors$"),
    "alerts": re.compile(r"/orgs/org-a/integration/open-alerts$"),
}
SETTLE_S = 3.0  # the longest hx-trigger delay (2 s) and the request


class Fetches:
    """The panel fragments the page requested, by panel."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        page.on("request", self._on_request)

    def _on_request(self, request: Request) -> None:
        path = request.url.split("://", 1)[-1].split("/", 1)[-1]
        for name, pattern in PANELS.items():
            if pattern.search("/" + path):
                self.seen.append(name)

    def during(self, page: Page, action, until: set[str] | None = None,  # type: ignore[no-untyped-def]
               seconds: float = SETTLE_S) -> set[str]:
        """The panels fetched after `action()`: once `until` all were, or when `seconds` have passed."""
        start = len(self.seen)
        action()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until <= set(self.seen[start:])):
            page.wait_for_timeout(100)
        return set(self.seen[start:])


@pytest.fixture()
def screen(world) -> Iterator[None]:  # type: ignore[no-untyped-def]
    factories.record(world.connector_a, status="failed", consecutive_failures=1,
                     last_error_code="account_mapping_missing", source_ref="LIVE-1")
    db.session.commit()
    yield


def _open(page: Page) -> Fetches:
    fetches = Fetches(page)
    page.goto("/orgs/org-a/integration")
    wait_live(page)
    return fetches


def _publish(org, event: LiveEvent):  # type: ignore[no-untyped-def]
    return lambda: publish_now(organization_channel(org.id), event.value, {"batch_id": 1})


def test_first_open_fetches_nothing_again(world, screen, signed_in):
    page = signed_in(world.admin_a)
    fetches = _open(page)
    assert fetches.during(page, lambda: None, seconds=1.0) == set()


def test_this_organizations_events_refresh_the_panels_that_follow_them(world, screen, signed_in):
    """records-changed refreshes the table, the chart and the connector panel; alert-changed the open alerts."""
    page = signed_in(world.admin_a)
    fetches = _open(page)
    both = {"records", "chart", "connectors"}
    assert both <= fetches.during(page, _publish(world.org_a, LiveEvent.RECORDS_CHANGED), until=both)
    assert "alerts" in fetches.during(page, _publish(world.org_a, LiveEvent.ALERT_CHANGED), until={"alerts"})


def test_another_organizations_events_refresh_nothing(world, screen, signed_in):
    """Given a global admin (whose stream carries every organization) on A's screen, B's events change nothing."""
    page = signed_in(world.global_admin)
    fetches = _open(page)
    fetched = fetches.during(page, lambda: (_publish(world.org_b, LiveEvent.RECORDS_CHANGED)(),
                                            _publish(world.org_b, LiveEvent.ALERT_CHANGED)()))
    assert not fetched & {"records", "chart", "connectors", "alerts"}
    both = {"records", "chart"}
    assert both <= fetches.during(page, _publish(world.org_a, LiveEvent.RECORDS_CHANGED), until=both)


def test_the_table_holds_still_while_a_record_is_selected_or_live_updates_are_off(world, screen, signed_in):
    page = signed_in(world.admin_a)
    fetches = _open(page)
    checkbox = page.get_by_role("checkbox", name="Select LIVE-1")
    checkbox.check()
    fetched = fetches.during(page, _publish(world.org_a, LiveEvent.RECORDS_CHANGED))
    assert "chart" in fetched and "records" not in fetched
    checkbox.uncheck()
    page.get_by_role("checkbox", name=re.compile("Update the records table")).uncheck()
    fetched = fetches.during(page, _publish(world.org_a, LiveEvent.RECORDS_CHANGED))
    assert "chart" in fetched and "records" not in fetched


def test_a_resync_refreshes_every_panel(world, screen, signed_in):
    """When Redis drops the stream's subscription, the server sends resync and every panel fetches itself."""
    page = signed_in(world.admin_a)
    fetches = _open(page)
    every = {"records", "chart", "connectors", "alerts"}
    fetched = fetches.during(page, lambda: redis_ext.client.execute_command("CLIENT", "KILL", "TYPE", "pubsub"),
                             until=every, seconds=10.0)
    assert fetched >= every
