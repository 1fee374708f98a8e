"""The Tripletex adapter against the local Tripletex fake (a real HTTP server on 127.0.0.1)."""
from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from dashboard.extensions import db
from dashboard.models import Connector, SyncRecord, utcnow
from dashboard.sync import orchestrator
from dashboard.sync.connectors import adapter_for, registry
from dashboard.sync.connectors.base import OutgoingRecord
from dashboard.sync.connectors import tripletex as tripletex_module
from dashboard.sync.connectors.tripletex import TripletexAdapter
from dashboard.sync.connectors.tripletex_settings import check_form
from dashboard.sync.connectors.tripletex_wire import OSLO, kroner
from tests import factories
from tests.fakes.tripletex import CONSUMER_TOKEN, EMPLOYEE_TOKEN, FakeClock, FakeTripletex

APPROVED = datetime(2026, 3, 4, 10, 15)
REQUEST_ID = r"\(requestId [0-9a-f-]{36}\)$"


@pytest.fixture()
def app_config() -> dict:
    return {"ALLOW_PRIVATE_OUTBOUND_URLS": True, "TRIPLETEX_CONSUMER_TOKEN": CONSUMER_TOKEN}


@pytest.fixture(autouse=True)
def _in_the_app(app):  # type: ignore[no-untyped-def]
    """Adapters are built in the app, as the orchestrator builds them, so they read its settings."""


@pytest.fixture()
def fake():  # type: ignore[no-untyped-def]
    with FakeTripletex(FakeClock(datetime(2026, 3, 5, 9, 0, tzinfo=timezone.utc))) as server:
        yield server


def adapter(fake: FakeTripletex, timeout: float = 2, **settings) -> TripletexAdapter:  # type: ignore[no-untyped-def]
    return TripletexAdapter({"base_url": fake.base_url, "timeout": timeout, **settings}, EMPLOYEE_TOKEN,
                            clock=fake.clock)


def record(ref: str = "EXP-1001", attempt: int = 1, **fields) -> OutgoingRecord:  # type: ignore[no-untyped-def]
    fields.setdefault("record_type", "expense_claim")
    fields.setdefault("amount_minor", 45_050)
    return OutgoingRecord(source_ref=ref, currency="NOK", approved_at=APPROVED, volunteer="Kari Nordmann",
                          description="Togbillett Oslo–Bergen", attempt_number=attempt, **fields)


def account_number(fake: FakeTripletex, account_id: int) -> int:
    return next(number for number, a in fake.accounts.items() if a["id"] == account_id)


# --- booking ----------------------------------------------------------------------------------------------


def test_a_record_books_one_balanced_voucher_with_the_mapped_accounts(fake):
    """Given an expense claim of 450.50 kr, when it is pushed, then one voucher debits 7140 and credits 1920 by
    450.50 from row 1, dated the approval day, with the source reference as externalVoucherNumber."""
    result = adapter(fake).push(record())
    assert result.ok and result.external_id == str(fake.vouchers[0]["id"])
    [voucher] = fake.vouchers
    assert (voucher["externalVoucherNumber"], voucher["date"]) == ("EXP-1001", "2026-03-04")
    rows = [(p["row"], account_number(fake, p["account"]["id"]), Decimal(p["amountGross"]))
            for p in voucher["postings"]]
    assert rows == [(1, 7140, Decimal("450.50")), (2, 1920, Decimal("-450.50"))]
    assert sum(amount for _, _, amount in rows) == 0


def test_each_record_type_books_to_its_account(fake):
    tripletex = adapter(fake, account_mileage_claim=7100, credit_account=2930)
    assert tripletex.push(record("KM-1", record_type="mileage_claim", amount_minor=1)).ok
    rows = [(account_number(fake, p["account"]["id"]), p["amountGross"]) for p in fake.vouchers[0]["postings"]]
    assert rows == [(7100, "0.01"), (2930, "-0.01")]


def test_accounts_and_vat_types_are_looked_up_once(fake):
    """Given three records, when they are pushed by one adapter, then each account and VAT type is read once."""
    tripletex = adapter(fake)
    for n in range(3):
        assert tripletex.push(record(f"EXP-{n}")).ok
    assert fake.requests["GET /v2/ledger/account"] == 2 and fake.requests["GET /v2/ledger/vatType"] == 1
    assert fake.requests["PUT /v2/token/session/:create"] == 1


@pytest.mark.parametrize("minor, kr", [(0, "0.00"), (1, "0.01"), (45_050, "450.50"), (123_456_789_01, "123456789.01")])
def test_ore_become_kroner_exactly(minor, kr):
    assert kroner(minor) == Decimal(kr) and str(kroner(minor)) == kr


def test_the_fake_refuses_row_0_and_unbalanced_postings_in_norwegian(fake):
    """Given a voucher posted with a row 0 and postings that do not sum to zero, then the fake answers 422/18000
    with Norwegian validationMessages, a requestId and the rate-limit headers, and books nothing."""
    session = adapter(fake)._session_token(renew=False)
    account = {"id": fake.accounts[1920]["id"]}
    body = json.dumps({"date": "2026-03-04", "externalVoucherNumber": "X-1", "postings": [
        {"row": 0, "account": account, "amountGross": 10.0}, {"row": 1, "account": account, "amountGross": -9.5}]})
    connection = http.client.HTTPConnection(fake.base_url.split("//")[1].split("/")[0], timeout=5)
    connection.request("POST", "/v2/ledger/voucher", body=body, headers={
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"0:{session}".encode()).decode()})
    response = connection.getresponse()
    envelope = json.loads(response.read())
    assert (response.status, envelope["status"], envelope["code"]) == (422, 422, 18000)
    assert [m["message"] for m in envelope["validationMessages"]] == [
        "Posteringer på rad 0 er systemgenererte og kan ikke opprettes.",
        "Bilaget er ikke i balanse. Differanse: 0.5."]
    assert envelope["requestId"] and response.headers["X-Rate-Limit-Remaining"] and not fake.vouchers


# --- failures ---------------------------------------------------------------------------------------------


def test_an_unknown_account_at_tripletex_is_validation_failed_with_the_norwegian_message(fake):
    """Given an account deleted in Tripletex after the adapter looked it up, when a record is pushed, then
    Tripletex's 422/18000 is validation_failed with its Norwegian field message and requestId."""
    tripletex = adapter(fake)
    assert tripletex.push(record("EXP-1")).ok
    del fake.accounts[7140]
    result = tripletex.push(record("EXP-2"))
    assert (result.error_code, result.retryable) == ("validation_failed", False)
    assert "Validering feilet. postings.account: Rad 1: Kontoen finnes ikke." in result.message
    assert result.message is not None
    assert re.search(REQUEST_ID, result.message)


def test_an_account_missing_from_the_chart_is_account_mapping_missing(fake):
    result = adapter(fake, account_expense_claim=7777).push(record())
    assert (result.error_code, result.retryable) == ("account_mapping_missing", False)
    assert "7777" in result.message and not fake.vouchers


def test_an_unknown_vat_type_is_invalid_vat_code(fake):
    result = adapter(fake, vat_type=99).push(record())
    assert (result.error_code, result.retryable) == ("invalid_vat_code", False) and not fake.vouchers


def _failing(fake: FakeTripletex, fault: str) -> None:
    if fault == "closed period":
        fake.close_period(2026, 3)
    elif fault == "revoked token":
        fake.employee_tokens.clear()
    elif fault == "forbidden":
        fake.forbid()
    elif fault == "down":
        fake.fail_next(10)


@pytest.mark.parametrize("fault, code, retryable, text", [
    ("closed period", "period_locked", False, "Perioden 03.2026 er låst for endringer."),
    ("revoked token", "credentials_expired", False, "Ugyldig consumer token eller employee token."),
    ("forbidden", "permission_denied", False, "Du har ikke tilgang til denne funksjonen."),
    ("down", "system_unavailable", True, "En uventet feil oppstod."),
])
def test_each_documented_failure_lands_as_its_error_code_with_the_request_id(fake, fault, code, retryable, text):
    _failing(fake, fault)
    result = adapter(fake).push(record())
    assert (result.ok, result.error_code, result.retryable) == (False, code, retryable)
    assert text in result.message and re.search(REQUEST_ID, result.message)
    assert not fake.vouchers


def test_429_is_rate_limited_until_the_reset_without_retry_after(fake):
    """Given a limit of 3 requests a minute, when a fourth is needed, then it is rate_limited, retryable, with
    retry_after from X-Rate-Limit-Reset; after the reset the record books."""
    fake.limit_rate(3, 60)
    tripletex = adapter(fake)
    result = tripletex.push(record())  # session, 2 accounts, VAT type: the 4th request is refused
    assert (result.error_code, result.retryable, result.retry_after) == ("rate_limited", True, 60)
    assert re.search(REQUEST_ID, result.message)
    fake.clock.advance(seconds=61)
    assert tripletex.push(record(attempt=2)).ok and fake.vouchers_by_external_number()["EXP-1001"] == 1


def test_a_stalled_tripletex_is_a_retryable_timeout(fake):
    fake.stall(1)
    result = adapter(fake, timeout=0.2).push(record())
    assert (result.error_code, result.retryable) == ("timeout", True)


def test_a_refused_connection_is_unavailable(fake):
    url = fake.base_url
    fake.stop()
    result = TripletexAdapter({"base_url": url}, EMPLOYEE_TOKEN).push(record())
    assert (result.error_code, result.retryable) == ("system_unavailable", True)


def test_no_consumer_token_is_a_clear_credentials_error(fake, app):
    app.config["TRIPLETEX_CONSUMER_TOKEN"] = None
    result = adapter(fake).push(record())
    assert result.error_code == "credentials_expired" and "TRIPLETEX_CONSUMER_TOKEN" in result.message


def test_tokens_never_appear_in_a_message(fake):
    fake.stop()
    result = TripletexAdapter({"base_url": "http://127.0.0.1:1/v2"}, EMPLOYEE_TOKEN).push(record())
    assert EMPLOYEE_TOKEN not in result.message and CONSUMER_TOKEN not in result.message


def test_a_token_echoed_by_tripletex_is_redacted(fake, monkeypatch):
    """Given Tripletex echoes the employee token in a validation message, then the message hides it."""
    def echoing(query):  # type: ignore[no-untyped-def]
        from tests.fakes.tripletex import _envelope, _Reply
        raise _Reply(422, _envelope(422, 18000, "Validering feilet.", [
            ("employeeToken", f"Ugyldig token {query['employeeToken']}.")]))

    monkeypatch.setattr(fake, "_create_session", echoing)
    message = adapter(fake).push(record()).message
    assert EMPLOYEE_TOKEN not in message and "Ugyldig token [redacted]." in message


# --- sessions ---------------------------------------------------------------------------------------------


def _oslo(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=OSLO)


def test_the_session_is_renewed_at_midnight_before_tripletex_refuses_it(fake):
    """Given a session created in the evening (expirationDate tomorrow), when the clock passes midnight, then the
    adapter creates a new session before its next request: no request is refused."""
    day = date(2026, 3, 5)
    fake.clock.set(_oslo(day, 20, 0))
    tripletex = adapter(fake)
    assert tripletex.push(record("EXP-1")).ok
    assert list(fake.sessions.values()) == [day + timedelta(days=1)]
    fake.clock.set(_oslo(day + timedelta(days=1), 0, 1))
    assert tripletex.push(record("EXP-2")).ok
    assert fake.requests["PUT /v2/token/session/:create"] == 2 and fake.statuses[401] == 0


def test_a_session_asked_for_just_before_midnight_lasts_into_the_next_day(fake):
    day = date(2026, 3, 5)
    fake.clock.set(_oslo(day, 23, 58))
    assert adapter(fake).push(record()).ok
    assert list(fake.sessions.values()) == [day + timedelta(days=2)]


def test_a_session_refused_with_401_3000_is_renewed_once_and_the_push_goes_through(fake):
    tripletex = adapter(fake)
    assert tripletex.push(record("EXP-1")).ok
    fake.expire_sessions()
    assert tripletex.push(record("EXP-2")).ok
    assert fake.statuses[401] == 1 and fake.requests["PUT /v2/token/session/:create"] == 2
    assert fake.vouchers_by_external_number() == {"EXP-1": 1, "EXP-2": 1}


# --- never twice ------------------------------------------------------------------------------------------


def test_tripletex_itself_accepts_a_second_voucher_with_the_same_external_number(fake):
    """Why the look-up exists: two first pushes of one reference book two vouchers at Tripletex."""
    adapter(fake).push(record())
    adapter(fake).push(record())
    assert fake.vouchers_by_external_number()["EXP-1001"] == 2


def test_commit_then_drop_is_found_and_not_booked_again(fake):
    """Given Tripletex books the voucher and drops the connection, when the push ends, then the adapter found
    the voucher by its externalVoucherNumber (ok), and a retry books nothing more."""
    fake.drop_after_commit()
    tripletex = adapter(fake)
    result = tripletex.push(record())
    assert result.ok and result.external_id == str(fake.vouchers[0]["id"])
    assert tripletex.push(record(attempt=2)).external_id == result.external_id
    assert fake.vouchers_by_external_number()["EXP-1001"] == 1


def test_a_timeout_after_commit_is_retried_without_booking_twice(fake):
    """Given Tripletex books the voucher but answers too late (and the look-up too), when the record is
    retried as attempt 2, then the look-up finds the voucher and nothing is booked again."""
    tripletex = adapter(fake, timeout=0.2)
    assert tripletex.push(record("EXP-0")).ok  # session, accounts and VAT type read before the stall
    fake.stall(0.5)
    first = tripletex.push(record())
    assert (first.error_code, first.retryable) == ("timeout", True)
    fake.stall(0)
    _wait_for(lambda: fake.vouchers_by_external_number()["EXP-1001"] == 1)
    second = adapter(fake).push(record(attempt=2))
    assert second.ok and second.external_id == str(fake.vouchers[1]["id"])
    assert fake.vouchers_by_external_number()["EXP-1001"] == 1


def test_a_failed_look_up_does_not_push(fake):
    """Given the look-up before a re-push answers 500, when attempt 2 runs, then it fails retryable without
    pushing; attempt 3 books once."""
    tripletex = adapter(fake)
    tripletex.push(record("EXP-0"))  # session and look-ups cached
    fake.fail_next(1)
    assert tripletex.push(record(attempt=2)).error_code == "system_unavailable"
    assert fake.requests["POST /v2/ledger/voucher"] == 1
    assert tripletex.push(record(attempt=3)).ok
    assert fake.vouchers_by_external_number()["EXP-1001"] == 1


@pytest.mark.parametrize("attempt", [1, 2])
def test_two_racing_pushes_of_one_record_book_it_once(fake, attempt):
    """Given two workers (threads, each with its adapter) pushing the same record at once while Tripletex is
    slow, when both finish, then both are ok with the same voucher, booked once."""
    fake.slow_after_commit(0.3)
    adapters = [adapter(fake), adapter(fake)]
    results = [None, None]
    start = threading.Barrier(2)

    def push(i: int) -> None:
        start.wait()
        results[i] = adapters[i].push(record(attempt=attempt))

    threads = [threading.Thread(target=push, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert all(r is not None and r.ok for r in results)
    assert results[0].external_id == results[1].external_id
    assert fake.vouchers_by_external_number()["EXP-1001"] == 1
    assert tripletex_module._in_flight == {}  # the per-record locks go with their last push


def test_retries_through_drops_500s_and_timeouts_never_book_twice(fake):
    """Given a record pushed through a drop, a 500 and a late answer, retried until booked, then one voucher."""
    tripletex = adapter(fake, timeout=0.3)
    tripletex.push(record("EXP-0"))
    faults = [lambda: fake.drop_after_commit(), lambda: fake.fail_next(1), lambda: fake.slow_after_commit(0.5)]
    for attempt, fault in enumerate(faults, start=1):
        fault()
        tripletex.push(record(attempt=attempt))
        fake.slow_after_commit(0)
    _wait_for(lambda: fake.requests["POST /v2/ledger/voucher"] >= 2)
    assert tripletex.push(record(attempt=len(faults) + 1)).ok
    assert fake.vouchers_by_external_number()["EXP-1001"] == 1


def _wait_for(condition, seconds: float = 3) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


# --- periods, settings, registry, orchestrator ------------------------------------------------------------


def test_closed_periods_are_read_from_tripletex(fake):
    fake.close_period(2026, 1)
    fake.close_period(2026, 3)
    fake.close_period(2025, 6)
    periods = adapter(fake).closed_periods(date(2026, 2, 15), date(2026, 5, 1))
    assert periods == [(date(2026, 3, 1), date(2026, 4, 1))]


def test_the_settings_form_reads_account_numbers_and_the_url(fake):
    """Given the form's URL and numbers, then they are saved as numbers (blank ones take the defaults) beside
    the saved timeout; a number that is not one is a problem beside its field."""
    fields = {"base_url": fake.base_url, "account_expense_claim": "7140", "account_mileage_claim": "",
              "account_reimbursement_payment": "2930", "credit_account": "1920", "vat_type": "0"}
    checked = check_form(fields, {"timeout": 5, "account_mileage_claim": 7000})
    assert checked.problems == []
    assert checked.settings == {"timeout": 5, "base_url": fake.base_url, "account_expense_claim": 7140,
                                "account_reimbursement_payment": 2930, "credit_account": 1920, "vat_type": 0}
    bad = check_form({**fields, "credit_account": "19x0"}, {})
    assert [name for name, _ in bad.problems] == ["credit_account"]


def test_the_status_screen_shows_the_tripletex_settings_and_saves_them(client, world, login, fake):
    """Given a tripletex connector, when its admin opens the status screen, then its labelled fields and the
    write-only token field are in the form, with no inline script or style; posting the form saves the numbers."""
    connector = factories.connector(world.org_a, name="Regnskap", provider="tripletex",
                                    settings={"base_url": fake.base_url}, secret=EMPLOYEE_TOKEN)
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration").get_data(as_text=True)
    assert "<legend>Regnskap: Tripletex</legend>" in html
    for name, label in [("base_url", "Tripletex API URL"), ("account_expense_claim", "Account for expense claims"),
                        ("credit_account", "Credit account (bank or payable)"), ("vat_type", "VAT type")]:
        assert f'<label for="{name}-{connector.id}">{label}</label>' in html
    assert EMPLOYEE_TOKEN not in html
    partial = (registry.PROVIDERS["tripletex"].template or "")
    source = (Path(__file__).parents[2] / "templates" / partial).read_text()
    assert "<script" not in source and "<style" not in source and "style=" not in source
    response = client.post(f"/orgs/org-a/integration/connectors/{connector.id}/settings", data={
        "enabled": "1", "base_url": fake.base_url, "account_expense_claim": "7140", "account_mileage_claim": "7100",
        "account_reimbursement_payment": "", "credit_account": "1920", "vat_type": "0", "secret": ""})
    assert response.status_code == 302
    db.session.expire_all()
    saved = db.session.get(Connector, connector.id)
    assert saved.settings == {"base_url": fake.base_url, "account_expense_claim": 7140,
                              "account_mileage_claim": 7100, "credit_account": 1920, "vat_type": 0}
    assert saved.secret == EMPLOYEE_TOKEN


def test_the_registry_builds_the_tripletex_adapter(fake):
    entry = registry.provider("tripletex")
    assert entry.pushed and entry.secret and entry.template == "status/connectors/tripletex.html"
    assert isinstance(adapter_for("tripletex", {"base_url": fake.base_url}, EMPLOYEE_TOKEN), TripletexAdapter)


def test_a_sync_through_the_orchestrator_books_the_records(world, fake):
    """Given pending records of a tripletex connector, when it is synced, then each is booked once in the fake
    and synced with the voucher id."""
    connector = factories.connector(world.org_a, name="Tripletex", provider="tripletex",
                                    settings={"base_url": fake.base_url}, secret=EMPLOYEE_TOKEN)
    records = [factories.record(connector, approved_at=utcnow() - timedelta(minutes=i)) for i in range(3)]
    db.session.commit()
    batch = orchestrator.sync_connector(connector.id)
    assert batch is not None and batch.attempt_count == 3 and batch.failure_count == 0
    db.session.expire_all()
    booked = {v["externalVoucherNumber"]: str(v["id"]) for v in fake.vouchers}
    for r in records:
        synced = db.session.get(SyncRecord, r.id)
        assert (synced.status, synced.external_id) == ("synced", booked[synced.source_ref])
    assert set(fake.vouchers_by_external_number().values()) == {1} and len(booked) == 3
