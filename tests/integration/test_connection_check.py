"""Test connection (issue 13, item 4): each provider's check against its local fake, and the settings form's
"Test connection" route and the check run on saving."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

import pytest

from dashboard.extensions import db
from dashboard.models import Connector
from dashboard.sync.connectors import registry
from dashboard.sync.connectors.base import CheckLine, ConnectionCheck
from dashboard.sync.connectors.connection import check_fiken, run
from dashboard.sync.connectors.tripletex import TripletexAdapter
from tests import factories
from tests import status_factories as sf
from tests.fakes.fiken import FikenFake
from tests.fakes.tripletex import CONSUMER_TOKEN, EMPLOYEE_TOKEN, FakeClock, FakeTripletex

HTMX = {"HX-Request": "true"}
NOW = datetime(2026, 11, 30, 14, 0, tzinfo=timezone.utc)
SLUG = "fiken-demo-forening"
TYPED_TOKEN = "typed-into-the-form-token-0451"


@pytest.fixture()
def app_config() -> dict:
    return {"ALLOW_PRIVATE_OUTBOUND_URLS": True, "TRIPLETEX_CONSUMER_TOKEN": CONSUMER_TOKEN}


@pytest.fixture()
def tripletex(app) -> Iterator[FakeTripletex]:  # type: ignore[no-untyped-def]
    with FakeTripletex(FakeClock(NOW)) as server:
        yield server


@pytest.fixture()
def fiken(app) -> Iterator[FikenFake]:  # type: ignore[no-untyped-def]
    with FikenFake() as server:
        yield server


def tripletex_check(fake: FakeTripletex, token: str = EMPLOYEE_TOKEN, **settings) -> ConnectionCheck:  # type: ignore[no-untyped-def]
    adapter = TripletexAdapter({"base_url": fake.base_url, "timeout": 2, **settings}, token, clock=fake.clock)
    return adapter.check_connection()


def fiken_settings(fake: FikenFake, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"company_slug": SLUG, "account_expense_claim": "6860", "account_mileage_claim": "7140",
            "credit_account": "1920", "base_url": fake.base_url, "timeout": 2, **extra}


def texts(check: ConnectionCheck) -> list[tuple[bool, str]]:
    return [(line.ok, line.text) for line in check.lines]


# --- the providers' checks -----------------------------------------------------------------------------------


def test_tripletex_ok_signs_in_reads_the_company_the_period_and_each_account(tripletex):
    """Given working settings, the check signs in, names the company, finds November 2026 open, and finds each
    mapped account and the VAT type."""
    check = tripletex_check(tripletex)
    assert check.ok
    assert texts(check) == [
        (True, "Signed in to Tripletex as company 12345 (Demo Forening)"),
        (True, "Accounting period 2026-11 is open"),
        (True, "Account 7140 exists (expense claims)"),
        (True, "Account 7100 exists (mileage claims)"),
        (True, "Account 2930 exists (reimbursement payments)"),
        (True, "Account 1920 exists (credit account)"),
        (True, "VAT type 0 exists"),
    ]
    assert tripletex.requests["GET /v2/token/session/>whoAmI"] == 1


def test_tripletex_with_a_wrong_employee_token_fails_at_sign_in(tripletex):
    check = tripletex_check(tripletex, token="not-the-employee-token")
    assert not check.ok
    [(ok, text)] = texts(check)
    assert not ok and text.startswith("Could not sign in to Tripletex: Tripletex refused the session token request: "
                                      "Ugyldig consumer token eller employee token.")
    assert "not-the-employee-token" not in text and CONSUMER_TOKEN not in text


def test_tripletex_names_a_mapped_account_that_does_not_exist_and_a_closed_period(tripletex):
    tripletex.close_period(2026, 11)
    check = tripletex_check(tripletex, account_mileage_claim=7150, vat_type=9)
    assert not check.ok
    assert check.failures() == ["Accounting period 2026-11 is closed: records dated in it are held back",
                                "Account 7150 not found (mileage claims)", "VAT type 9 not found"]
    assert (True, "Account 7140 exists (expense claims)") in texts(check)


def test_tripletex_that_forbids_the_session_stops_at_the_company(tripletex):
    tripletex.forbid()
    [(ok, text)] = texts(tripletex_check(tripletex))
    assert not ok and text.startswith("Could not sign in to Tripletex: Tripletex: Du har ikke tilgang")


def test_fiken_ok_and_a_missing_account(fiken):
    check = check_fiken(fiken_settings(fiken), fiken.personal_token())
    assert check.ok and texts(check) == [
        (True, f"Signed in to Fiken: company '{SLUG}' found"), (True, "Account 6860 exists"),
        (True, "Account 7140 exists"), (True, "Account 1920 exists")]
    missing = check_fiken(fiken_settings(fiken, account_mileage_claim="7150"), fiken.personal_token())
    assert not missing.ok and missing.failures() == [f"Account 7150 not found in company '{SLUG}'"]


def test_fiken_unknown_slug_and_a_rejected_token(fiken):
    unknown = check_fiken(fiken_settings(fiken, company_slug="ingen-slik-forening"), fiken.personal_token())
    assert not unknown.ok and len(unknown.lines) == 1
    assert unknown.lines[0].text.startswith("Could not read Fiken company 'ingen-slik-forening': ")
    assert "check the company slug" in unknown.lines[0].text
    token = "nope-not-a-token"
    rejected = check_fiken(fiken_settings(fiken), token)
    assert not rejected.ok and rejected.lines[0].text.startswith(f"Could not read Fiken company '{SLUG}'")
    assert token not in rejected.lines[0].text


def test_the_registry_has_checks_for_tripletex_fiken_and_the_sandbox_only():
    assert {name for name, p in registry.PROVIDERS.items() if p.check_connection} == {"tripletex", "fiken", "sandbox"}
    assert registry.SANDBOX.check_connection({}, None).ok


def test_a_check_that_raises_becomes_a_failed_line_without_the_secret():
    def broken(settings, secret):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"boom {secret}")

    def echoing(settings, secret):  # type: ignore[no-untyped-def]
        return ConnectionCheck.of([CheckLine(False, f"token {secret} refused")])

    assert not run(broken, {}, "s3cret").ok
    assert run(echoing, {}, "s3cret").lines[0].text == "token [redacted] refused"


# --- the route ----------------------------------------------------------------------------------------------


def tripletex_connector(world, fake: FakeTripletex, **settings) -> Connector:  # type: ignore[no-untyped-def]
    connector = factories.connector(world.org_a, name="Regnskap", provider="tripletex",
                                    settings={"base_url": fake.base_url, **settings}, secret=EMPLOYEE_TOKEN)
    db.session.commit()
    return connector


def form(fake: FakeTripletex, **fields) -> dict:  # type: ignore[no-untyped-def]
    return {"enabled": "1", "base_url": fake.base_url, "account_expense_claim": "", "account_mileage_claim": "",
            "account_reimbursement_payment": "", "credit_account": "", "vat_type": "", "secret": "", **fields}


def test_test_connection_answers_htmx_with_the_result_for_the_status_region(client, world, login, tripletex):
    """The saved secret is used when the field is empty; the result is the region's content; nothing is saved."""
    connector = tripletex_connector(world, tripletex)
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration").get_data(as_text=True)
    assert f'<div id="connection-check-{connector.id}" class="connection-check" role="status"></div>' in html
    assert f'hx-post="/orgs/org-a/integration/connectors/{connector.id}/test"' in html
    response = client.post(f"/orgs/org-a/integration/connectors/{connector.id}/test",
                           data=form(tripletex, account_expense_claim="7150"), headers=HTMX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Connection failed." in body and "Account 7150 not found (expense claims)" in body
    assert "Failed:" in body and "Passed:" in body  # not by colour or icon alone
    assert "<html" not in body and EMPLOYEE_TOKEN not in body
    db.session.expire_all()
    assert db.session.get(Connector, connector.id).settings == {"base_url": tripletex.base_url}


def test_a_typed_secret_is_used_for_the_test_and_never_echoed_or_saved(client, world, login, tripletex):
    connector = tripletex_connector(world, tripletex)
    tripletex.employee_tokens.add(TYPED_TOKEN)
    tripletex.employee_tokens.discard(EMPLOYEE_TOKEN)
    login(world.admin_a)
    path = f"/orgs/org-a/integration/connectors/{connector.id}/test"
    with_saved = client.post(path, data=form(tripletex), headers=HTMX).get_data(as_text=True)
    assert "Could not sign in to Tripletex" in with_saved
    typed = client.post(path, data=form(tripletex, secret=TYPED_TOKEN), headers=HTMX).get_data(as_text=True)
    assert "Connection works." in typed and TYPED_TOKEN not in typed
    page = client.post(path, data=form(tripletex, secret=TYPED_TOKEN))  # a plain browser: the whole page
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Connection works." in html and "<html" in html
    assert TYPED_TOKEN not in html and EMPLOYEE_TOKEN not in html
    db.session.expire_all()
    assert db.session.get(Connector, connector.id).secret == EMPLOYEE_TOKEN


def test_test_connection_with_a_form_problem_shows_the_problem_and_tests_nothing(client, world, login, tripletex):
    connector = tripletex_connector(world, tripletex)
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/integration/connectors/{connector.id}/test",
                           data=form(tripletex, credit_account="nineteen"), headers=HTMX)
    assert response.status_code == 422 and response.headers["HX-Retarget"] == "#connector-settings"
    assert "error-summary" in response.get_data(as_text=True)
    assert tripletex.requests["PUT /v2/token/session/:create"] == 0


def test_another_organizations_connector_is_404_and_not_tested(client, world, login, tripletex):
    connector = tripletex_connector(world, tripletex)
    login(world.admin_b)
    for org in ("org-a", "org-b"):
        assert client.post(f"/orgs/{org}/integration/connectors/{connector.id}/test", data=form(tripletex),
                           headers=HTMX).status_code == 404
    assert tripletex.requests["PUT /v2/token/session/:create"] == 0


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True, "ALLOW_PRIVATE_OUTBOUND_URLS": True,
                                         "TRIPLETEX_CONSUMER_TOKEN": CONSUMER_TOKEN}])
def test_test_connection_requires_a_csrf_token(client, world, app_config, tripletex):
    connector = tripletex_connector(world, tripletex)
    token = sf.csrf_token(client, "/login")
    client.post("/login", data={"email": world.admin_a.email, "password": factories.PASSWORD, "csrf_token": token})
    path = f"/orgs/org-a/integration/connectors/{connector.id}/test"
    assert client.post(path, data=form(tripletex), headers=HTMX).status_code == 400
    token = sf.csrf_token(client, "/orgs/org-a/integration")
    assert client.post(path, data=form(tripletex), headers={**HTMX, "X-CSRFToken": token}).status_code == 200


def test_saving_runs_the_check_and_a_failure_is_saved_but_said(client, world, login, tripletex):
    """Saving with an account Tripletex does not have saves the settings and says "saved, but the connection test
    failed", naming the account; a plain browser gets the same as an error notice after the redirect."""
    connector = tripletex_connector(world, tripletex)
    login(world.admin_a)
    path = f"/orgs/org-a/integration/connectors/{connector.id}/settings"
    response = client.post(path, data=form(tripletex, account_expense_claim="7150"), headers=HTMX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert ("The settings of Regnskap are saved, but the connection test failed: Account 7150 not found "
            "(expense claims)") in body
    assert EMPLOYEE_TOKEN not in body
    db.session.expire_all()
    assert db.session.get(Connector, connector.id).settings["account_expense_claim"] == 7150
    ok = client.post(path, data=form(tripletex), headers=HTMX).get_data(as_text=True)
    assert "The settings of Regnskap are saved, and the connection works." in ok and "Connection works." in ok
    plain = client.post(path, data=form(tripletex, credit_account="1921"), follow_redirects=True)
    html = plain.get_data(as_text=True)
    assert "flash-error" in html and "Account 1921 not found (credit account)" in html


def test_saving_a_disabled_connector_runs_no_check(client, world, login, tripletex):
    connector = tripletex_connector(world, tripletex)
    login(world.admin_a)
    fields = form(tripletex)
    del fields["enabled"]
    body = client.post(f"/orgs/org-a/integration/connectors/{connector.id}/settings", data=fields,
                       headers=HTMX).get_data(as_text=True)
    assert "The settings of Regnskap are saved." in body
    assert tripletex.requests["PUT /v2/token/session/:create"] == 0


def test_the_http_connector_has_no_test_button(client, world, login):
    connector = factories.connector(world.org_a, name="Ledger", provider="http",
                                    settings={"url": "https://ledger.example/api"})
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration").get_data(as_text=True)
    assert f"test-connection-{connector.id}" not in html
    assert f'id="test-connection-{world.connector_a.id}"' in html  # the sandbox's
