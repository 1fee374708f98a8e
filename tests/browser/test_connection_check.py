"""Test connection in Chromium: the result lands in the form's status region (present and empty at load), is
said in words (not by colour alone), passes axe, and the typed secret never comes back."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

import pytest
from playwright.sync_api import Page, expect

from dashboard.extensions import db
from tests import factories
from tests.fakes.tripletex import CONSUMER_TOKEN, EMPLOYEE_TOKEN, FakeClock, FakeTripletex

TYPED_TOKEN = "typed-in-the-browser-0451"


@pytest.fixture()
def app_config() -> dict:
    return {"WTF_CSRF_ENABLED": True, "ALLOW_PRIVATE_OUTBOUND_URLS": True, "TRIPLETEX_CONSUMER_TOKEN": CONSUMER_TOKEN}


@pytest.fixture()
def tripletex(app) -> Iterator[FakeTripletex]:  # type: ignore[no-untyped-def]
    with FakeTripletex(FakeClock(datetime(2026, 11, 30, 14, 0, tzinfo=timezone.utc))) as server:
        yield server


def test_test_connection_result_is_announced_and_accessible(page: Page, world, signed_in, axe_check, tripletex):
    """Given a Tripletex connector mapped to an account Tripletex lacks, when its admin presses Test connection,
    the status region says the connection failed and names the account, the page passes axe, and a secret
    typed into the form is not shown anywhere."""
    connector = factories.connector(world.org_a, name="Regnskap", provider="tripletex",
                                    settings={"base_url": tripletex.base_url, "account_expense_claim": 7150},
                                    secret=EMPLOYEE_TOKEN)
    db.session.commit()
    tripletex.employee_tokens.add(TYPED_TOKEN)
    signed_in(world.admin_a)
    page.goto("/orgs/org-a/integration")
    region = page.locator(f"#connection-check-{connector.id}")
    expect(region).to_have_attribute("role", "status")
    expect(region).to_be_empty()
    page.locator(f"#secret-{connector.id}").fill(TYPED_TOKEN)
    page.locator(f"#test-connection-{connector.id}").click()
    expect(region).to_contain_text("Connection failed.")
    expect(region).to_contain_text("Failed: Account 7150 not found (expense claims)")
    expect(region).to_contain_text("Passed: Signed in to Tripletex as company 12345")
    expect(region).not_to_have_attribute("aria-busy", "true")
    assert TYPED_TOKEN not in page.content()
    axe_check(page)
