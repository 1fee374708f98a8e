"""The seed criteria as journeys: a real server, a real Redis, a real RQ worker and Chromium."""
from __future__ import annotations

import http.client
import json
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from dashboard.extensions import db
from dashboard.models import Notification, SyncRecord, utcnow
from dashboard.queues import alerts_queue
from dashboard.tokens import create_token
from jobs.sync import enqueue_sync
from tests import factories
from tests.alerting import run, writing
from tests.browser.conftest import ANNOUNCEMENT_RECORDER, wait_for, wait_live

pytestmark = pytest.mark.slow
LIVE_TIMEOUT = 15_000


def _open_tray(page: Page) -> None:
    page.get_by_role("button", name="Notifications").click()
    expect(page.locator("#tray-panel")).to_be_visible()


def _fail_twice(connector, record_type: str = "mileage_claim") -> SyncRecord:
    """A record that failed twice already; its next sync is due now."""
    record = factories.record(connector, record_type=record_type)
    db.session.commit()
    for minutes in (20, 10):
        run(connector, [(record, "invalid_vat_code")], at=utcnow() - timedelta(minutes=minutes))
    with writing():
        connector.settings = {"scenario": "invalid_vat_code", "record_type": record_type}
        db.session.execute(sa.update(SyncRecord).where(SyncRecord.id == record.id)
                           .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    return record


def test_third_consecutive_failure_appears_in_the_open_page_without_reload(world, signed_in, rq_worker):
    """Given an org admin's open page, when a record's third sync fails, the tray shows an alert naming
    the record type and the error, and the live region announces it."""
    page = signed_in(world.admin_a)
    page.add_init_script(ANNOUNCEMENT_RECORDER)
    page.reload()
    wait_live(page)
    _fail_twice(world.connector_a)
    enqueue_sync(world.connector_a.id)
    expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible(timeout=LIVE_TIMEOUT)
    _open_tray(page)
    item = page.locator("#tray-list .notification-title").first
    expect(item).to_contain_text("mileage claim")
    expect(item).to_contain_text("Invalid VAT code")
    wait_for(page, "window.__announced.some(t => t.includes('Invalid VAT code'))")


def _post_failures(live_server, organization, connector, n: int) -> None:
    token = create_token(organization, "journey")
    db.session.commit()
    now = utcnow().replace(microsecond=0)
    attempts = [{"record_ref": f"api-{i}", "record_type": "expense_claim", "amount_minor": 12_500, "currency": "NOK",
                 "approved_at": (now - timedelta(hours=3)).isoformat() + "+00:00",
                 "attempted_at": (now - timedelta(minutes=n - i)).isoformat() + "+00:00",
                 "outcome": "failure", "error_code": "invalid_vat_code", "error_message": "VAT code 99 is unknown"}
                for i in range(n)]
    connection = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=10)
    connection.request("POST", "/api/v1/sync-batches", json.dumps({"connector": connector.id, "attempts": attempts}),
                       {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    assert response.status == 201, response.read()


def test_eleventh_error_reaches_org_admin_and_global_admin(world, new_page, signed_in, rq_worker, live_server):
    """Given open pages of the org admin and a global admin, when the 11th error in 24 hours is ingested,
    both trays show the error-threshold alert."""
    org_page = signed_in(world.admin_a)
    global_page = signed_in(world.global_admin, on=new_page())
    wait_live(org_page)
    wait_live(global_page)
    _post_failures(live_server, world.org_a, world.connector_a, 11)
    for page in (org_page, global_page):
        expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible(timeout=LIVE_TIMEOUT)
        _open_tray(page)
        expect(page.locator("#tray-list .notification-title").first).to_contain_text("more than 10 sync errors")


def test_stale_records_alert_links_to_the_status_screen(world, signed_in, rq_worker):
    """Given approved records pending for more than 48 hours on an enabled connector, when the scan runs,
    the admin gets an alert that opens the integration status screen."""
    page = signed_in(world.admin_a)
    wait_live(page)
    factories.record(world.connector_a, approved_at=utcnow() - timedelta(hours=49))
    db.session.commit()
    alerts_queue().enqueue("jobs.alerts.check_organization", world.org_a.id)
    expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible(timeout=LIVE_TIMEOUT)
    _open_tray(page)
    link = page.locator("#tray-list a").first
    expect(link).to_contain_text("waiting more than 48 hours")
    link.click()
    page.wait_for_url("**/orgs/org-a/integration?alert=*")


def test_several_organizations_failing_make_one_platform_alert(world, new_page, signed_in, rq_worker):
    """Given a global admin's open page, when two organizations raise alerts, they receive one
    consolidated platform alert naming both, not one per organization."""
    page = signed_in(world.global_admin)
    wait_live(page)
    for connector in (world.connector_a, world.connector_b):
        _fail_twice(connector)
        enqueue_sync(connector.id)
    expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible(timeout=LIVE_TIMEOUT)
    _open_tray(page)
    titles = page.locator("#tray-list .notification-title")
    expect(titles).to_have_count(1)
    expect(titles.first).to_contain_text("Organization A")
    expect(titles.first).to_contain_text("Organization B")


def test_tray_catches_up_after_redis_drops_the_stream(world, signed_in, app):
    """Given an open page, when a notification is written while Redis drops every subscription, the tray
    shows it anyway once the stream's subscription is restored."""
    from dashboard.extensions import redis_ext

    page = signed_in(world.admin_a)
    wait_live(page)
    record = factories.record(world.connector_a)
    db.session.commit()
    from unittest import mock

    with mock.patch("dashboard.live.publish.publish_now"):  # the push is lost
        for minutes in (30, 20, 10):
            run(world.connector_a, [(record, "invalid_vat_code")], at=utcnow() - timedelta(minutes=minutes))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 1
    redis_ext.client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible(timeout=LIVE_TIMEOUT)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": False}])
def test_twenty_open_streams_leave_the_database_pool_free(world, live_server, client, login, app_config):
    """Given 20 open event streams, the database pool has no connection checked out and pages still load."""
    login(world.admin_a)
    cookie = "; ".join(f"{c.key}={c.value}" for c in client._cookies.values())
    host = urlsplit(live_server.url).hostname
    connections = []
    for _ in range(20):
        connection = http.client.HTTPConnection(host, live_server.port, timeout=10)
        connection.request("GET", "/events", headers={"Cookie": cookie})
        response = connection.getresponse()
        assert response.status == 200
        assert response.read(len(b": connected")) == b": connected"
        connections.append(connection)
    db.session.remove()  # the test's own session is not a stream's
    assert db.engine.pool.checkedout() == 0
    page = http.client.HTTPConnection(host, live_server.port, timeout=10)
    page.request("GET", "/orgs/org-a", headers={"Cookie": cookie})
    assert page.getresponse().status == 200
    for connection in connections:
        connection.close()


def _rule_one_alert(world, n: int = 3):
    """n mileage claims that failed three times with an account mapping missing, and two records that did not."""
    failing = [factories.record(world.connector_a, record_type="mileage_claim", source_ref=f"FAIL-{i}")
               for i in range(n)]
    others = [factories.record(world.connector_a, record_type="expense_claim", source_ref=f"OK-{i}") for i in range(2)]
    db.session.commit()
    run(world.connector_a, [(r, None) for r in others], at=utcnow() - timedelta(minutes=40))
    for minutes in (30, 20, 10):
        run(world.connector_a, [(r, "account_mapping_missing") for r in failing],
            at=utcnow() - timedelta(minutes=minutes))
    return failing


def _listed_refs(page: Page) -> set[str]:
    rows = page.locator(".records-table tbody tr")
    expect(rows.first).to_be_visible()
    return {ref for ref in ("FAIL-0", "FAIL-1", "FAIL-2", "OK-0", "OK-1") if page.locator(
        ".records-table tbody", has_text=ref).count()}


def test_clicking_an_alert_opens_the_status_screen_with_exactly_its_affected_records(world, signed_in):
    """Given an alert in the tray, when the admin clicks it, the status screen lists exactly its records."""
    page = signed_in(world.admin_a)
    wait_live(page)
    _rule_one_alert(world)
    expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible(timeout=LIVE_TIMEOUT)
    _open_tray(page)
    page.locator("#tray-list a").first.click()
    page.wait_for_url("**/orgs/org-a/integration?alert=*")
    assert _listed_refs(page) == {"FAIL-0", "FAIL-1", "FAIL-2"}
    expect(page.get_by_role("button", name="Notifications, 0 unread")).to_be_visible()


def test_retrying_the_failed_records_successfully_sends_a_resolution_notification(world, signed_in, rq_worker):
    """Given an open alert and a fixed connector, when the admin retries its records, a resolution
    notification confirms the issue is cleared."""
    page = signed_in(world.admin_a)
    _rule_one_alert(world)
    world.connector_a.settings = {"scenario": "healthy"}
    db.session.commit()
    note = db.session.scalars(sa.select(Notification)).one()
    page.goto(f"/notifications/{note.id}")
    wait_live(page)
    page.locator("#retry-alert").click()
    page.get_by_role("button", name="Yes, retry").click()
    expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible(timeout=LIVE_TIMEOUT)
    _open_tray(page)
    resolved = page.locator("#tray-list .notification").first
    expect(resolved).to_contain_text("Cleared")
    expect(resolved).to_contain_text("mileage claims failed 3 times in a row")


def test_platform_page_refreshes_itself_when_an_organization_alerts(world, signed_in):
    """Given a global admin watching /platform, when an organization's alert is raised, the organizations
    panel shows it without a reload."""
    page = signed_in(world.global_admin)
    page.goto("/platform")
    wait_live(page)
    panel = page.locator("#platform-organizations")
    expect(panel).not_to_contain_text("records keep failing")
    _rule_one_alert(world)
    expect(panel).to_contain_text("records keep failing", timeout=LIVE_TIMEOUT)
