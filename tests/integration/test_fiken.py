"""The Fiken adapter against the Fiken fake (a real HTTP server on 127.0.0.1), private addresses allowed."""
from __future__ import annotations

import json
import multiprocessing
import threading
from datetime import datetime, timedelta
from typing import Iterator

import pytest
import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import SyncRecord, utcnow
from dashboard.sync import orchestrator
from dashboard.sync.connectors import adapter_for
from dashboard.sync.connectors import fiken_settings as fiken
from dashboard.sync.connectors.base import OutgoingRecord
from dashboard.sync.connectors.fiken import FikenAdapter
from dashboard.sync.connectors.fiken_oauth import TokenRefreshFailed, refresh_access_token
from tests import factories
from tests.fakes.fiken import FikenFake

SLUG = "fiken-demo-forening"


@pytest.fixture()
def app_config() -> dict:
    return {"ALLOW_PRIVATE_OUTBOUND_URLS": True}  # the fake listens on 127.0.0.1


@pytest.fixture()
def fake(app) -> Iterator[FikenFake]:  # type: ignore[no-untyped-def]
    with FikenFake() as server:
        yield server


def settings(fake: FikenFake, slug: str = SLUG, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"company_slug": slug, "account_expense_claim": "6860", "account_mileage_claim": "7140",
            "credit_account": "1920", "base_url": fake.base_url, "timeout": 2, **extra}


def record(ref: str = "EXP-1001", attempt: int = 1, **fields) -> OutgoingRecord:  # type: ignore[no-untyped-def]
    values = dict(source_ref=ref, record_type="expense_claim", amount_minor=45_050, currency="NOK",
                  approved_at=datetime(2026, 3, 4, 23, 15), volunteer="Kari Nordmann",
                  description="Togbillett Oslo–Bergen", attempt_number=attempt)
    return OutgoingRecord(**{**values, **fields})


def adapter(fake: FikenFake, token: str | None = None, **extra) -> FikenAdapter:  # type: ignore[no-untyped-def]
    return FikenAdapter(settings(fake, **extra), token or fake.personal_token())


def test_a_record_books_one_journal_entry_with_its_accounts_and_amount_in_ore(fake):
    """Given a mapped expense claim, when it is pushed, then Fiken books one entry: the amount in øre debited to
    the expense account and credited to the bank account, dated the Norwegian day, naming the reference."""
    result = adapter(fake).push(record())
    assert result.ok and result.external_id == str(fake.entries[0]["journalEntryId"])
    [entry] = fake.entries
    assert entry["lines"] == [{"amount": 45_050, "debitAccount": "6860", "creditAccount": "1920"}]
    assert entry["date"] == "2026-03-05"  # 23:15 UTC is past midnight in Oslo
    assert entry["description"].startswith("[EXP-1001] expense claim Kari Nordmann")


def test_the_registry_builds_the_fiken_adapter(fake):
    assert isinstance(adapter_for("fiken", settings(fake), "token"), FikenAdapter)


@pytest.mark.parametrize("shape, expected", [
    ("json_error", '{"error": "bad_request", "error_description": "Entry date is in a locked year"}'),
    ("json_list", '[{"code": 400, "message": "Entry date is in a locked year"}]'),
    ("text", "Entry date is in a locked year"),
    ("empty", None),
])
def test_400_is_validation_failed_with_the_raw_text_whatever_its_shape(fake, shape, expected):
    """Given Fiken answers 400 with a body of any shape, the failure keeps the status and the raw text."""
    fake.fail_next(400, "Entry date is in a locked year", shape=shape)
    result = adapter(fake).push(record())
    assert (result.ok, result.error_code, result.retryable) == (False, "validation_failed", False)
    assert result.message == "Fiken answered HTTP 400 Bad Request" + (f": {expected}" if expected else "")


def test_the_fake_refuses_non_integer_amounts_and_malformed_accounts(fake):
    """Given an amount in kroner or an account of the wrong form, Fiken answers 400 and the adapter says why."""
    fiken_adapter = adapter(fake)
    for line in ({"amount": 450.5, "debitAccount": "6860", "creditAccount": "1920"},
                 {"amount": 45_050, "debitAccount": "686", "creditAccount": "1920"},
                 {"amount": 45_050, "debitAccount": "6860", "creditAccount": "1920:123"}):
        body = {"description": "x", "journalEntries": [{"date": "2026-03-05", "description": "x", "lines": [line]}]}
        answer = fiken_adapter.request("POST", "/generalJournalEntries", body=json.dumps(body).encode())
        assert answer.status == 400
    assert fake.entries == []


def test_a_malformed_account_is_refused_before_sending(fake):
    """Given settings with a malformed account, the adapter is not built; an unmapped record type is not sent."""
    with pytest.raises(ValueError, match="NNNN or NNNN:NNNNN"):
        adapter(fake, account_expense_claim="68600")
    result = adapter(fake).push(record(record_type="reimbursement_payment"))
    assert (result.error_code, result.retryable) == ("account_mapping_missing", False)
    assert fake.requests == 0


@pytest.mark.parametrize("case, code, retryable", [
    ("unknown token", "credentials_expired", False),
    ("forbidden company", "permission_denied", False),
    ("unknown slug", "permission_denied", False),
])
def test_credentials_permission_and_slug_failures(fake, case, code, retryable):
    if case == "unknown token":
        fiken_adapter = adapter(fake, token="not-a-token")
    elif case == "forbidden company":
        fiken_adapter = adapter(fake, slug="annen-forening")
    else:
        fiken_adapter = adapter(fake, slug="ukjent-forening")
    result = fiken_adapter.push(record())
    assert (result.ok, result.error_code, result.retryable) == (False, code, retryable)
    assert result.message.startswith("Fiken answered HTTP 40")
    if case == "unknown slug":
        assert "check the company slug" in result.message and "Company ukjent-forening not found" in result.message


def test_429_is_rate_limited_with_retry_after(fake):
    fake.fail_next(429, "Rate limit exceeded", shape="text", headers={"Retry-After": "7"})
    result = adapter(fake).push(record())
    assert (result.error_code, result.retryable, result.retry_after) == ("rate_limited", True, 7)
    assert result.message == "Fiken answered HTTP 429 Too Many Requests: Rate limit exceeded"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_system_unavailable_and_retryable(fake, status):
    fake.fail_next(status, "Service down for maintenance", shape="text")
    result = adapter(fake).push(record())
    assert (result.error_code, result.retryable) == ("system_unavailable", True)
    assert result.message.endswith(": Service down for maintenance")


def test_a_slow_answer_is_a_timeout(fake):
    fake.latency = 1.0
    result = adapter(fake, timeout=0.2).push(record())
    assert (result.error_code, result.retryable) == ("timeout", True)


def test_the_token_never_appears_in_a_message(fake):
    token = fake.personal_token()
    fake.fail_next(400, f"Bad token {token} used", shape="text")
    message = adapter(fake, token=token).push(record()).message
    assert token not in message and "[redacted]" in message


def test_after_a_dropped_connection_the_retry_books_nothing_twice(fake):
    """Given Fiken booked the entry but the connection dropped before its answer, the attempt is a timeout;
    the retry (attempt 2) finds the entry by its reference and books nothing more."""
    fiken_adapter = adapter(fake)
    fake.drop_next_post()
    first = fiken_adapter.push(record())
    assert (first.ok, first.error_code, first.retryable) == (False, "timeout", True)
    assert fake.entries_naming("[EXP-1001]") == 1
    second = fiken_adapter.push(record(attempt=2))
    assert second.ok and second.external_id == str(fake.entries[0]["journalEntryId"])
    assert fake.entries_naming("[EXP-1001]") == 1


def test_a_retry_after_a_refused_push_books_once(fake):
    """Given the first push failed with a 500 (nothing booked), the retry looks first, finds nothing, books once;
    a similar reference (EXP-10010) is not taken for it."""
    fiken_adapter = adapter(fake)
    assert fiken_adapter.push(record(ref="EXP-10010")).ok
    fake.fail_next(500, "oops", method="POST")
    assert not fiken_adapter.push(record()).ok
    assert fiken_adapter.push(record(attempt=2)).ok
    assert fake.entries_naming("[EXP-1001]") == 1 and len(fake.entries) == 2


def test_a_failed_look_up_does_not_push_blindly(fake):
    fake.fail_next(503, "", shape="empty", method="GET")
    result = adapter(fake).push(record(attempt=2))
    assert (result.error_code, result.message) == ("system_unavailable", "Fiken answered HTTP 503 Service Unavailable")
    assert fake.entries == []


def test_two_threads_pushing_to_one_connector_never_overlap_and_keep_the_pace(app, fake):
    """Given two workers (threads, each with its own adapter) pushing to one Fiken client at once, Fiken never
    sees two requests in flight, and never more than 4 in a second."""
    token = fake.personal_token()
    results: list = []

    def work(prefix: str) -> None:
        with app.app_context():
            fiken_adapter = adapter(fake, token=token)
            results.extend(fiken_adapter.push(record(ref=f"{prefix}-{i}")) for i in range(5))

    threads = [threading.Thread(target=work, args=(p,)) for p in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 10 and all(r.ok for r in results), results
    assert (fake.max_concurrent, fake.overlaps, len(fake.entries)) == (1, 0, 10)
    assert fake.max_in_window(1.0) <= 4


def _push_in_process(redis_url: str, base_url: str, token: str, prefix: str, count: int) -> None:
    """A second worker process: its own app context (private addresses allowed) and its own Redis client."""
    import redis
    from flask import Flask

    app = Flask("fiken-worker")
    app.config["ALLOW_PRIVATE_OUTBOUND_URLS"] = True
    with app.app_context():
        fiken_adapter = FikenAdapter(
            {"company_slug": SLUG, "account_expense_claim": "6860", "credit_account": "1920",
             "base_url": base_url, "timeout": 5},
            token, redis=redis.Redis.from_url(redis_url))
        for i in range(count):
            assert fiken_adapter.push(record(ref=f"{prefix}-{i}")).ok


def test_two_processes_pushing_to_one_connector_never_overlap(app, fake, redis_url):
    token = fake.personal_token()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_push_in_process, args=(redis_url, fake.base_url, token, p, 4))
               for p in ("P", "Q")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    assert (fake.max_concurrent, fake.overlaps, len(fake.entries)) == (1, 0, 8)
    assert fake.max_in_window(1.0) <= 4


def test_oauth_tokens_expire_refresh_with_rotation_and_a_spent_refresh_token_means_reconnect(fake):
    """Given an OAuth2 connection, when its access token expires the push is credentials_expired; a refresh
    gives a new access token and a rotated refresh token; the old refresh token is then invalid_grant."""
    access, refresh = fake.oauth_tokens(ttl=60)
    assert adapter(fake, token=access).push(record(ref="EXP-1")).ok
    fake.advance(120)
    assert adapter(fake, token=access).push(record(ref="EXP-2")).error_code == "credentials_expired"

    tokens = refresh_access_token(refresh, fake.client_id, fake.client_secret, token_url=fake.token_url)
    assert tokens.refresh_token != refresh and tokens.expires_in == 86400
    assert refresh not in repr(tokens) and tokens.access_token not in repr(tokens)
    assert adapter(fake, token=tokens.access_token).push(record(ref="EXP-2")).ok

    with pytest.raises(TokenRefreshFailed) as failed:
        refresh_access_token(refresh, fake.client_id, fake.client_secret, token_url=fake.token_url)
    assert (failed.value.code, failed.value.retryable) == ("credentials_expired", False)
    assert "reconnect Fiken" in failed.value.message and "invalid_grant" in failed.value.message


def test_a_token_endpoint_that_is_down_is_retryable(fake):
    token_url = fake.token_url
    fake.stop()
    with pytest.raises(TokenRefreshFailed) as failed:
        refresh_access_token("rt-x", "c", "s", token_url=token_url, timeout=1)
    assert (failed.value.code, failed.value.retryable) == ("system_unavailable", True)


def test_a_sync_through_the_orchestrator_books_the_records(world, fake):
    """Given a fiken connector with pending records, when it is synced, every record is booked once in Fiken."""
    connector = factories.connector(world.org_a, name="Fiken", provider="fiken", settings=settings(fake),
                                    secret=fake.personal_token())
    records = [factories.record(connector, approved_at=utcnow() - timedelta(minutes=i), amount_minor=10_000 + i)
               for i in range(3)]
    db.session.commit()
    assert connector.id in orchestrator.connectors_to_sync()
    batch = orchestrator.sync_connector(connector.id)
    assert batch is not None and (batch.attempt_count, batch.failure_count) == (3, 0)
    db.session.expire_all()
    for r in records:
        synced = db.session.get(SyncRecord, r.id)
        assert synced.status == "synced" and fake.entries_naming(f"[{synced.source_ref}]") == 1
    assert sorted(e["lines"][0]["amount"] for e in fake.entries) == [10_000, 10_001, 10_002]
    assert fake.max_concurrent == 1


def test_the_settings_form_check(app):
    good = fiken.check_form({"company_slug": "fiken-demo-forening", "account_expense_claim": "6860",
                             "account_mileage_claim": "", "account_reimbursement_payment": "2400:20001",
                             "credit_account": "1920"}, {"base_url": "http://127.0.0.1:1/api/v2", "timeout": 3})
    assert good.problems == []
    assert good.settings == {"base_url": "http://127.0.0.1:1/api/v2", "timeout": 3, "company_slug": "fiken-demo-forening",
                             "account_expense_claim": "6860", "account_reimbursement_payment": "2400:20001",
                             "credit_account": "1920"}
    bad = fiken.check_form({"company_slug": "", "account_expense_claim": "68600", "account_mileage_claim": "",
                            "account_reimbursement_payment": "", "credit_account": ""}, {})
    assert [name for name, _ in bad.problems] == ["company_slug", "account_expense_claim", "credit_account"]


def test_the_settings_partial_shows_labelled_fields(client, world, login, fake):
    connector = factories.connector(world.org_a, name="Fiken", provider="fiken", settings=settings(fake))
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration").get_data(as_text=True)
    for name, label in (("company_slug", "Fiken company slug"), ("credit_account", "Bank or credit account"),
                        ("account_mileage_claim", "Account for mileage claims")):
        assert f'<label for="{name}-{connector.id}">{label}</label>' in html
    assert f'id="account_expense_claim-{connector.id}" name="account_expense_claim" value="6860"' in html
    assert "<dt>Fiken company</dt><dd>fiken-demo-forening</dd>" in html


def test_a_sync_retried_after_a_dropped_connection_books_the_record_once(world, fake):
    """Given Fiken booked a record but dropped the connection, the sync logs a timeout; when the record is
    retried by the next sync, the adapter finds the entry, the record is synced, and Fiken holds one entry."""
    connector = factories.connector(world.org_a, name="Fiken", provider="fiken", settings=settings(fake),
                                    secret=fake.personal_token())
    record_row = factories.record(connector, source_ref="EXP-7001")
    db.session.commit()
    fake.drop_next_post()
    orchestrator.sync_connector(connector.id)
    db.session.expire_all()
    failed = db.session.get(SyncRecord, record_row.id)
    assert (failed.status, failed.last_error_code) == ("failed", "timeout")
    db.session.execute(sa.update(SyncRecord).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    batch = orchestrator.sync_connector(connector.id)
    assert batch is not None and batch.failure_count == 0
    db.session.expire_all()
    synced = db.session.get(SyncRecord, record_row.id)
    assert synced.status == "synced" and synced.external_id == str(fake.entries[0]["journalEntryId"])
    assert fake.entries_naming("[EXP-7001]") == 1


def test_the_connection_check_reads_the_company_and_the_mapped_accounts(fake):
    """Given working settings the check finds nothing; an account missing from the chart, a forbidden company
    or a rejected token are each named with their error code."""
    assert adapter(fake).check_connection() == []
    [missing] = adapter(fake, account_mileage_claim="7150").check_connection()
    assert (missing.error_code, missing.message) == (
        "account_mapping_missing", "Fiken has no account 7150 in company 'fiken-demo-forening'.")
    assert [r.error_code for r in adapter(fake, slug="annen-forening").check_connection()] == ["permission_denied"]
    assert [r.error_code for r in adapter(fake, token="nope").check_connection()] == ["credentials_expired"]
    assert fake.max_concurrent == 1
