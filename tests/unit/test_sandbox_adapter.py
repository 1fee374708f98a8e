"""The sandbox accounting system: each scenario, its reproducibility, and its settings check."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dashboard.sync.connectors import adapter_for
from dashboard.sync.connectors.base import OutgoingRecord
from dashboard.sync.connectors.sandbox import SCENARIOS, SandboxAdapter, validate_settings
from dashboard.sync.errors import ERROR_CODES

PINNED_MAPPING_MISSING = ["EXP-0", "EXP-13", "EXP-6"]
"""Which of EXP-0..EXP-19 lack a mapping with share 0.2 and seed 7; Python's salted hash() would vary per process."""
PINNED_FLAKY = ["EXP-5", "EXP-9"]
"""Which of EXP-0..EXP-9 fail their first attempt with share 0.4 and seed 11."""


def record(ref: str = "EXP-1", record_type: str = "expense_claim", attempt: int = 1) -> OutgoingRecord:
    return OutgoingRecord(source_ref=ref, record_type=record_type, amount_minor=45_000, currency="NOK",
                          approved_at=datetime(2026, 11, 14, 9, 30, tzinfo=timezone.utc),
                          volunteer="Kari Nordmann", description="Togbillett Oslo–Bergen", attempt_number=attempt)


def refs(count: int) -> list[str]:
    return [f"EXP-{n}" for n in range(count)]


def failing_refs(adapter: SandboxAdapter, references: list[str], attempt: int = 1) -> set[str]:
    return {ref for ref in references if not adapter.push(record(ref, attempt=attempt)).ok}


def test_healthy_books_every_record_with_a_sandbox_id():
    """Given the healthy scenario, when a record is pushed, then it is booked as SBX-<source_ref>."""
    result = SandboxAdapter({"scenario": "healthy"}).push(record("EXP-42"))
    assert result.ok and result.external_id == "SBX-EXP-42"


def test_settings_without_a_scenario_are_healthy():
    """Given a connector with empty settings, when a record is pushed, then it is booked."""
    assert SandboxAdapter({}).push(record()).ok


def test_adapter_for_builds_the_sandbox():
    """Given the sandbox provider, when its adapter is built, then it is a SandboxAdapter with those settings."""
    adapter = adapter_for("sandbox", {"scenario": "down"}, secret=None)
    assert isinstance(adapter, SandboxAdapter) and adapter.scenario == "down"


def test_period_locked_rejects_the_locked_record_type_permanently():
    """Given mileage claims' period is locked, when a mileage claim is pushed, then it fails permanently."""
    adapter = SandboxAdapter({"scenario": "period_locked", "record_type": "mileage_claim"})
    result = adapter.push(record("KM-7", record_type="mileage_claim"))
    assert (result.ok, result.error_code, result.retryable) == (False, "period_locked", False)


def test_period_locked_message_names_the_period():
    """Given a locked period, when a record approved in November 2026 fails, then the message names 2026-11."""
    adapter = SandboxAdapter({"scenario": "period_locked", "record_type": "mileage_claim"})
    message = adapter.push(record("KM-7", record_type="mileage_claim")).message
    assert message is not None and message.startswith("Period 2026-11 is locked for posting")


def test_period_locked_books_other_record_types():
    """Given mileage claims' period is locked, when an expense claim is pushed, then it is booked."""
    adapter = SandboxAdapter({"scenario": "period_locked", "record_type": "mileage_claim"})
    assert adapter.push(record("EXP-7", record_type="expense_claim")).ok


def test_invalid_vat_code_rejects_the_record_type_permanently():
    """Given mileage claims carry an invalid VAT code, when a mileage claim is pushed, then it fails permanently."""
    adapter = SandboxAdapter({"scenario": "invalid_vat_code", "record_type": "mileage_claim"})
    result = adapter.push(record("KM-7", record_type="mileage_claim"))
    assert (result.ok, result.error_code, result.retryable) == (False, "invalid_vat_code", False)


def test_invalid_vat_code_is_a_record_level_error():
    """Given the invalid_vat_code scenario, when its error is looked up, then it is not connector-level."""
    assert not ERROR_CODES["invalid_vat_code"].connector_level


def test_invalid_vat_code_message_names_the_code_and_the_voucher():
    """Given an invalid VAT code, when a record fails, then the message names the VAT code, account and voucher."""
    adapter = SandboxAdapter({"scenario": "invalid_vat_code", "record_type": "mileage_claim"})
    message = adapter.push(record("KM-7", record_type="mileage_claim")).message
    assert message == "VAT code 7 is not valid for account 7140; voucher KM-7 was rejected"


def test_invalid_vat_code_books_other_record_types():
    """Given mileage claims carry an invalid VAT code, when an expense claim is pushed, then it is booked."""
    adapter = SandboxAdapter({"scenario": "invalid_vat_code", "record_type": "mileage_claim"})
    assert adapter.push(record("EXP-7", record_type="expense_claim")).ok


def test_mapping_missing_fails_about_the_given_share():
    """Given a 30% mapping gap, when 2,000 records are pushed, then about 30% fail."""
    adapter = SandboxAdapter({"scenario": "mapping_missing", "share": 0.3})
    assert 0.26 < len(failing_refs(adapter, refs(2000))) / 2000 < 0.34


def test_mapping_missing_defaults_to_a_fifth_of_the_records():
    """Given no share, when 2,000 records are pushed, then about 20% fail."""
    adapter = SandboxAdapter({"scenario": "mapping_missing"})
    assert 0.16 < len(failing_refs(adapter, refs(2000))) / 2000 < 0.24


def test_mapping_missing_is_permanent():
    """Given every record lacks a mapping, when one is pushed, then it fails permanently: account_mapping_missing."""
    result = SandboxAdapter({"scenario": "mapping_missing", "share": 1}).push(record())
    assert (result.ok, result.error_code, result.retryable) == (False, "account_mapping_missing", False)


def test_mapping_missing_hits_the_same_records_on_every_attempt():
    """Given a mapping gap, when the same records are pushed again as later attempts, then the same ones fail."""
    adapter = SandboxAdapter({"scenario": "mapping_missing", "share": 0.5})
    assert failing_refs(adapter, refs(200), attempt=1) == failing_refs(adapter, refs(200), attempt=4)


def test_mapping_missing_choice_is_stable_across_processes():
    """Given seed 7, when the first records are pushed, then the same ones fail as in any other process."""
    adapter = SandboxAdapter({"scenario": "mapping_missing", "share": 0.2, "seed": 7})
    assert sorted(failing_refs(adapter, refs(20))) == PINNED_MAPPING_MISSING


def test_mapping_missing_seed_changes_which_records_fail():
    """Given two seeds, when the same records are pushed, then different records fail."""
    first = SandboxAdapter({"scenario": "mapping_missing", "seed": 1})
    second = SandboxAdapter({"scenario": "mapping_missing", "seed": 2})
    assert failing_refs(first, refs(200)) != failing_refs(second, refs(200))


def test_credentials_expired_fails_every_push_without_retry():
    """Given expired credentials, when records are pushed, then each fails with credentials_expired, not retryable."""
    adapter = SandboxAdapter({"scenario": "credentials_expired"})
    results = [adapter.push(record(ref)) for ref in refs(5)]
    assert {(r.ok, r.error_code, r.retryable) for r in results} == {(False, "credentials_expired", False)}


def test_rate_limited_asks_to_retry_after_30_seconds_by_default():
    """Given the rate-limited scenario, when a record is pushed, then it fails retryably with Retry-After 30."""
    result = SandboxAdapter({"scenario": "rate_limited"}).push(record())
    assert (result.error_code, result.retryable, result.retry_after) == ("rate_limited", True, 30)


def test_rate_limited_honours_the_configured_retry_after():
    """Given a Retry-After of 90 seconds, when a record is pushed, then the result asks for 90 seconds."""
    assert SandboxAdapter({"scenario": "rate_limited", "retry_after": 90}).push(record()).retry_after == 90


def test_down_fails_retryably_as_unavailable():
    """Given the system is down, when a record is pushed, then it fails with system_unavailable, retryable."""
    result = SandboxAdapter({"scenario": "down"}).push(record())
    assert (result.ok, result.error_code, result.retryable) == (False, "system_unavailable", True)


def test_flaky_fails_about_the_given_share_transiently():
    """Given a 25% flaky system, when 2,000 records are pushed, then about 25% fail as unavailable or timeout."""
    adapter = SandboxAdapter({"scenario": "flaky", "share": 0.25, "seed": 3})
    failures = [r for r in (adapter.push(record(ref)) for ref in refs(2000)) if not r.ok]
    assert 0.21 < len(failures) / 2000 < 0.29
    assert {(r.error_code, r.retryable) for r in failures} == {("system_unavailable", True), ("timeout", True)}


def test_flaky_run_is_reproducible():
    """Given two adapters with the same seed, when they push the same records, then the same records fail."""
    settings = {"scenario": "flaky", "share": 0.4, "seed": 11}
    assert failing_refs(SandboxAdapter(settings), refs(300)) == failing_refs(SandboxAdapter(settings), refs(300))


def test_flaky_choice_is_stable_across_processes():
    """Given seed 11, when the first records are pushed, then the same ones fail as in any other process."""
    adapter = SandboxAdapter({"scenario": "flaky", "share": 0.4, "seed": 11})
    assert sorted(failing_refs(adapter, refs(10))) == PINNED_FLAKY


def test_flaky_retry_can_succeed():
    """Given a record that failed its first attempt, when its later attempts are pushed, then one succeeds."""
    adapter = SandboxAdapter({"scenario": "flaky", "share": 0.5, "seed": 5})
    failed_first = sorted(failing_refs(adapter, refs(50)))[0]
    assert any(adapter.push(record(failed_first, attempt=n)).ok for n in range(2, 10))


@pytest.mark.parametrize("share, expected_failures", [(0, 0), (1, 100)])
def test_flaky_share_bounds(share, expected_failures):
    """Given a share of 0 or 1, when 100 records are pushed, then none or all of them fail."""
    adapter = SandboxAdapter({"scenario": "flaky", "share": share})
    assert len(failing_refs(adapter, refs(100))) == expected_failures


@pytest.mark.parametrize("scenario", [name for name in SCENARIOS if name != "healthy"])
def test_every_failure_code_is_in_the_vocabulary(scenario):
    """Given any failing scenario, when its failures are pushed, then each code is in the error vocabulary."""
    adapter = SandboxAdapter({"scenario": scenario, "share": 1, "record_type": "expense_claim"})
    result = adapter.push(record())
    assert not result.ok and result.error_code in ERROR_CODES and result.message


def test_unknown_scenario_is_refused_at_construction():
    """Given an unknown scenario, when the adapter is built, then it raises ValueError naming the scenario."""
    with pytest.raises(ValueError, match="meltdown"):
        SandboxAdapter({"scenario": "meltdown"})


def test_invalid_settings_are_refused_at_construction():
    """Given a share above 1, when the adapter is built, then it raises ValueError."""
    with pytest.raises(ValueError, match="Share"):
        SandboxAdapter({"scenario": "mapping_missing", "share": 1.5})


@pytest.mark.parametrize("settings", [
    {"scenario": "healthy"},
    {"scenario": "period_locked", "record_type": "reimbursement_payment"},
    {"scenario": "invalid_vat_code", "record_type": "expense_claim"},
    {"scenario": "mapping_missing"},
    {"scenario": "mapping_missing", "share": 0, "seed": 7},
    {"scenario": "flaky", "share": 1, "seed": "demo"},
    {"scenario": "rate_limited", "retry_after": 0},
    {"scenario": "credentials_expired"},
    {"scenario": "down"},
])
def test_valid_settings_have_no_problems(settings):
    """Given usable settings, when they are validated, then there are no problems."""
    assert validate_settings(settings) == []


@pytest.mark.parametrize("settings, phrase", [
    ({"scenario": "meltdown"}, "Unknown scenario 'meltdown'"),
    ({"scenario": "mapping_missing", "share": 1.5}, "Share must be a number between 0 and 1"),
    ({"scenario": "mapping_missing", "share": -0.1}, "Share must be a number between 0 and 1"),
    ({"scenario": "flaky", "share": "half"}, "Share must be a number between 0 and 1"),
    ({"scenario": "flaky", "share": True}, "Share must be a number between 0 and 1"),
    ({"scenario": "flaky"}, "The flaky scenario needs a share"),
    ({"scenario": "period_locked"}, "needs the record type"),
    ({"scenario": "period_locked", "record_type": "invoice"}, "Unknown record type 'invoice'"),
    ({"scenario": "invalid_vat_code"}, "The invalid_vat_code scenario needs the record type whose VAT code"),
    ({"scenario": "invalid_vat_code", "record_type": "invoice"}, "Unknown record type 'invoice'"),
    ({"scenario": "rate_limited", "retry_after": -5}, "Retry-After must be a number of seconds"),
])
def test_invalid_settings_are_explained(settings, phrase):
    """Given unusable settings, when they are validated, then exactly one problem explains what is wrong."""
    problems = validate_settings(settings)
    assert len(problems) == 1 and phrase in problems[0]


def test_every_problem_is_reported_at_once():
    """Given settings wrong in two ways, when they are validated, then both problems are reported."""
    assert len(validate_settings({"scenario": "meltdown", "share": 2})) == 2

