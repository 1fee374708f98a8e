"""The webhooks pages in a browser: axe finds nothing in any of their states."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

PATH = "/hook"


@pytest.fixture()
def app_config() -> dict:
    return {"WTF_CSRF_ENABLED": True, "ALLOW_PRIVATE_OUTBOUND_URLS": True}  # the receiver listens on 127.0.0.1


def test_an_admin_adds_a_webhook_sees_its_secret_once_sends_a_test_and_reads_the_log(
        page: Page, world, signed_in, axe_check, httpserver):
    """Given organization A's admin on its webhooks page, when they submit a bad URL, then a good one, they see
    the error, then the secret once; "Send test" reaches the receiver and the log shows it delivered. Every
    state has no axe violations."""
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    signed_in(world.admin_a)
    page.goto("/orgs/org-a/settings/webhooks")
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks of Organization A")
    expect(page.get_by_text("No webhook yet.")).to_be_visible()
    axe_check(page)

    page.get_by_label("URL").fill("ftp://hooks.example.org")
    page.get_by_role("button", name="Add the webhook").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    expect(page.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    axe_check(page)

    page.get_by_label("URL").fill(httpserver.url_for(PATH))
    page.get_by_label("Description").fill("#finance")
    page.get_by_label("Escalated").check()
    page.get_by_role("button", name="Add the webhook").click()
    secret = page.locator("#new-secret-value")
    expect(secret).to_have_text(re.compile(r"^whsec_"))
    expect(page.get_by_role("table")).to_contain_text("raised, resolved, escalated")
    axe_check(page)

    page.get_by_role("button", name=re.compile("^Send test")).click()
    expect(page).to_have_url(re.compile(r"/orgs/org-a/settings/webhooks/\d+$"))
    expect(page.get_by_text("The test message was delivered: the endpoint answered 200.")).to_be_visible()
    expect(page.get_by_role("table")).to_contain_text("Delivered")
    assert len(httpserver.log) == 1
    axe_check(page)

    page.get_by_role("link", name="Back to the webhooks").click()
    expect(page.locator("#new-secret-value")).to_have_count(0)
    expect(page.get_by_role("table")).to_contain_text("Delivered")


def test_the_platform_webhooks_page(page: Page, world, signed_in, axe_check):
    """Given a global admin, the platform webhooks page has no axe violations, empty and with a webhook."""
    signed_in(world.global_admin)
    page.goto("/platform/webhooks")
    expect(page.get_by_role("heading", level=1)).to_have_text("Platform webhooks")
    axe_check(page)
    page.get_by_label("URL").fill("https://hooks.example.org/platform")
    page.get_by_role("button", name="Add the webhook").click()
    expect(page.locator("#new-secret-value")).to_have_text(re.compile(r"^whsec_"))
    page.goto("/platform/webhooks")
    expect(page.get_by_role("table")).to_contain_text("https://hooks.example.org/platform")
    axe_check(page)
