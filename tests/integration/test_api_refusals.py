"""The API refuses what it cannot trust: each refusal answers 422 naming the field, and writes nothing.

Also: an id in any URL that no database column can hold answers 404, and so does a page cursor's id (400).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.routing import Rule
from werkzeug.routing.converters import IntegerConverter

from dashboard import create_app
from dashboard.models import SyncRecord
from tests.integration.test_api import (  # noqa: F401  (app_config, post and token are fixtures)
    NOW,
    app_config,
    attempt,
    post,
    token,
    valid_payload,
    written_rows,
)


@pytest.fixture()
def before(post, world, db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The sync log's row counts after an earlier accepted batch, so "unchanged" is not just "empty"."""
    earlier = {"connector": world.connector_a.id,
               "attempts": [attempt("EARLIER-1"), attempt("EARLIER-2", outcome="success")]}
    assert post(earlier).status_code == 201
    return written_rows(db)


def assert_refused(response: Any, db: Any, before: dict[str, int], field: str, message: str) -> None:
    """422 in the API's error body, naming the field with the message, and the sync log's row counts unchanged."""
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["status"] == 422
    assert {"field": field, "message": message} in error["fields"], error
    assert written_rows(db) == before


def _one(world: Any, **fields: Any) -> dict[str, Any]:
    """A payload of one failed attempt of EXP-1, with these fields changed."""
    return {"connector": world.connector_a.id, "attempts": [attempt("EXP-1", **fields)]}


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def test_given_an_attempt_before_its_approval_when_posted_then_422_names_the_field_and_nothing_is_written(
        post, world, db, before):
    response = post(_one(world, approved_at=_iso(NOW - timedelta(hours=2)),
                         attempted_at=_iso(NOW - timedelta(hours=3))))

    assert_refused(response, db, before, "attempts[0].attempted_at", "Before the record's approval (approved_at)")


@pytest.mark.parametrize("attempted_at", [
    pytest.param(_iso(NOW - timedelta(days=31)), id="31 days ago"),
    pytest.param("1900-01-01T00:00:00Z", id="1900"),
    pytest.param("0001-01-01T00:00:00+00:00", id="year 1"),
])
def test_given_an_attempt_older_than_the_30_day_horizon_when_posted_then_422_names_the_field_and_nothing_is_written(
        post, world, db, before, attempted_at):
    response = post(_one(world, attempted_at=attempted_at))

    assert_refused(response, db, before, "attempts[0].attempted_at", "More than 30 days ago (the attempt horizon)")


@pytest.mark.parametrize("app_config", [{"API_ATTEMPT_HORIZON_DAYS": 7}])
def test_given_a_horizon_of_7_days_when_an_attempt_8_days_old_is_posted_then_422_names_the_field_and_nothing_is_written(
        post, world, db, before):
    response = post(_one(world, approved_at=_iso(NOW - timedelta(days=9)),
                         attempted_at=_iso(NOW - timedelta(days=8))))

    assert_refused(response, db, before, "attempts[0].attempted_at", "More than 7 days ago (the attempt horizon)")


def test_given_an_attempt_29_days_old_of_a_record_approved_9_years_ago_when_posted_then_it_is_written(post, world, db):
    response = post(_one(world, approved_at=_iso(NOW - timedelta(days=9 * 365)),
                         attempted_at=_iso(NOW - timedelta(days=29))))

    assert response.status_code == 201, response.get_data(as_text=True)


@pytest.mark.parametrize("approved_at", [
    pytest.param(_iso(NOW - timedelta(days=11 * 365)), id="11 years ago"),
    pytest.param("1999-12-31T23:59:59Z", id="1999"),
    pytest.param("1900-01-01T00:00:00Z", id="1900"),
    pytest.param("0001-01-01T00:00:00+00:00", id="year 1"),
])
def test_given_an_approval_more_than_10_years_ago_when_posted_then_422_names_the_field_and_nothing_is_written(
        post, world, db, before, approved_at):
    response = post(_one(world, approved_at=approved_at))

    assert_refused(response, db, before, "attempts[0].approved_at", "More than 10 years ago")


@pytest.mark.parametrize(("index", "name", "value", "character"), [
    pytest.param(0, "record_ref", "EXP-\x00", "U+0000", id="NUL in record_ref"),
    pytest.param(0, "record_ref", "EXP-\t1", "U+0009", id="tab in record_ref"),
    pytest.param(0, "record_ref", "EXP-1\n", "U+000A", id="LF in record_ref"),
    pytest.param(0, "error_message", "Period \x1b[31mlocked", "U+001B", id="ESC in error_message"),
    pytest.param(0, "error_message", "Period locked\x00", "U+0000", id="NUL in error_message"),
    pytest.param(0, "error_message", "Period\x7f locked", "U+007F", id="DEL in error_message"),
    pytest.param(1, "external_id", "V-\x85", "U+0085", id="NEL (C1) in external_id"),
    pytest.param(1, "external_id", "V-\x9b1", "U+009B", id="CSI (C1) in external_id"),
    pytest.param(1, "external_id", "V-\r1", "U+000D", id="CR in external_id"),
])
def test_given_a_control_character_in_a_string_when_posted_then_422_names_the_field_and_nothing_is_written(
        post, world, db, before, index, name, value, character):
    payload = valid_payload(world.connector_a.id)
    payload["attempts"][index][name] = value

    response = post(payload)

    assert_refused(response, db, before, f"attempts[{index}].{name}", f"Control character {character} is not allowed")


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f", "\x9f"])
def test_given_a_control_character_in_a_code_when_posted_then_422_names_the_fields_and_nothing_is_written(
        post, world, db, before, control):
    """Codes (currency, error_code) refuse it too: their pattern or vocabulary has no control character."""
    payload = valid_payload(world.connector_a.id)
    payload["attempts"][0].update(currency=f"NO{control}", error_code=f"timeout{control}")

    response = post(payload)

    assert response.status_code == 422
    assert {"attempts[0].currency", "attempts[0].error_code"} <= {
        f["field"] for f in response.get_json()["error"]["fields"]}
    assert written_rows(db) == before


def test_given_tab_cr_and_lf_in_an_error_message_when_posted_then_it_is_written_as_sent(post, world, db):
    message = "Line 1:\tperiod locked\r\nLine 2: call the accountant"

    response = post(_one(world, error_message=message))

    assert response.status_code == 201, response.get_data(as_text=True)
    assert written_rows(db)["SyncAttempt"] == 1


@pytest.mark.parametrize("second_attempted_at", [
    pytest.param(_iso(NOW - timedelta(minutes=30)), id="the same time"),
    pytest.param(_iso((NOW - timedelta(minutes=30)).astimezone(timezone(timedelta(hours=2)))),
                 id="the same instant in another offset"),
])
def test_given_one_attempt_twice_in_a_request_when_posted_then_422_names_the_second_and_nothing_is_written(
        post, world, db, before, second_attempted_at):
    payload = {"connector": world.connector_a.id, "attempts": [
        attempt("EXP-1", minutes_ago=30),
        attempt("EXP-2", outcome="success", minutes_ago=30),
        attempt("EXP-1", attempted_at=second_attempted_at, error_code="timeout"),
    ]}

    response = post(payload)

    assert_refused(response, db, before, "attempts[2].attempted_at", "Same record_ref and attempted_at as attempts[0]")


@pytest.mark.parametrize(("value", "message"), [
    pytest.param("vol-\x1b1", "Control character U+001B is not allowed", id="ESC"),
    pytest.param("vol-\x85", "Control character U+0085 is not allowed", id="NEL (C1)"),
    pytest.param("vol\u200b-1", "Character U+200B is not printable", id="zero-width space"),
    pytest.param("vol\u00a01", "Character U+00A0 is not printable", id="no-break space"),
    pytest.param("vol\u2028", "Character U+2028 is not printable", id="line separator"),
    pytest.param(" vol-1", "Begins or ends with a space", id="space first"),
    pytest.param("vol-1 ", "Begins or ends with a space", id="space last"),
    pytest.param("", "String should have at least 1 character", id="empty"),
    pytest.param("v" * 101, "String should have at most 100 characters", id="101 characters"),
    pytest.param(1042, "Input should be a valid string", id="a number"),
])
def test_given_a_volunteer_reference_that_is_not_1_to_100_printable_characters_when_posted_then_422_names_it(
        post, world, db, before, value, message):
    response = post(_one(world, volunteer_ref=value))

    assert_refused(response, db, before, "attempts[0].volunteer_ref", message)


def test_given_two_attempts_of_a_record_naming_two_volunteers_when_posted_then_422_names_the_second(
        post, world, db, before):
    payload = {"connector": world.connector_a.id, "attempts": [
        attempt("EXP-1", minutes_ago=30, volunteer_ref="vol-1"),
        attempt("EXP-1", minutes_ago=20),
        attempt("EXP-1", minutes_ago=10, volunteer_ref="vol-2"),
    ]}

    response = post(payload)

    assert_refused(response, db, before, "attempts[2].volunteer_ref",
                   "Differs from attempts[0], which has the same record_ref")


def test_given_a_known_record_of_one_volunteer_when_reported_with_another_then_409_names_both_and_nothing_is_written(
        post, world, db, before):
    """A volunteer reference is set once, like the record's other details: a report naming another volunteer
    is refused, not applied, so money is never silently re-attributed."""
    response = post({"connector": world.connector_a.id, "attempts": [
        attempt("EXP-2", minutes_ago=5, volunteer_ref="vol-2"),
        attempt("EARLIER-1", minutes_ago=1, volunteer_ref="vol-1"),
    ]})
    assert response.status_code == 201
    before = written_rows(db)

    response = post({"connector": world.connector_a.id, "attempts": [
        attempt("EXP-3", minutes_ago=2, volunteer_ref="vol-3"),
        attempt("EARLIER-1", minutes_ago=0, outcome="success", volunteer_ref="vol-9"),
    ]})

    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.get_json()["error"]["fields"] == [{
        "field": "attempts[1].volunteer_ref",
        "message": "Record 'EARLIER-1' is known with volunteer_ref 'vol-1', not 'vol-9'; "
                   "records cannot be changed once known"}]
    assert written_rows(db) == before
    db.session.rollback()
    assert db.session.scalar(sa.select(SyncRecord.volunteer_ref).where(SyncRecord.source_ref == "EARLIER-1")) == "vol-1"


def test_the_openapi_document_states_the_refusals(client):
    """Given the OpenAPI document, then the attempt's fields say what is refused."""
    attempt_schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["AttemptReport"]
    properties = attempt_schema["properties"]

    assert "10 years" in properties["approved_at"]["description"]
    assert "horizon" in properties["attempted_at"]["description"]
    assert "approved_at" in properties["attempted_at"]["description"]
    assert properties["record_ref"]["pattern"] == r"^[^\u0000-\u001F\u007F-\u009F]*$"
    assert "tab" in properties["error_message"]["description"]
    volunteer_ref = properties["volunteer_ref"]
    assert {"type": "string", "minLength": 1, "maxLength": 100} in volunteer_ref["anyOf"]
    assert "Printable characters only" in volunteer_ref["description"]
    assert "volunteer_ref" not in attempt_schema.get("required", [])


# ---- ids in URLs ----

SAMPLE_ARGUMENTS = {"org": "org-a", "action": "enable"}
"""A value for each URL argument that is not an id; a new kind of argument must be added here."""
HUGE_IDS = {"2**31": 2**31, "2**63": 2**63, "10**30": 10**30}


def _int_rules() -> list[Rule]:
    """Every rule with an `<int:...>` argument, read from an app's URL map (so new routes are covered)."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    return [rule for rule in app.url_map.iter_rules()
            if any(isinstance(converter, IntegerConverter) for converter in rule._converters.values())]


def _url_cases() -> list[Any]:
    cases = []
    for rule in _int_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for label, value in HUGE_IDS.items():
                cases.append(pytest.param(rule.rule, method, value, id=f"{method} {rule.rule} {label}"))
    return cases


@pytest.mark.parametrize(("pattern", "method", "value"), _url_cases())
def test_given_an_id_no_column_can_hold_when_any_url_is_requested_then_it_answers_404(
        app, client, world, login, pattern, method, value):
    """Given a global admin, when any URL with an id is requested with 2**31, 2**63 or 10**30 as the id,
    then it answers 404 (the rule does not match), not a database error."""
    login(world.global_admin)
    rule = next(r for r in app.url_map.iter_rules() if r.rule == pattern)
    arguments = {name: value if isinstance(converter, IntegerConverter) else SAMPLE_ARGUMENTS[name]
                 for name, converter in rule._converters.items()}
    _, path = rule.build(arguments)

    response = client.open(path, method=method)

    assert response.status_code == 404, response.get_data(as_text=True)[:500]


def test_the_largest_id_a_column_holds_still_matches_and_finds_nothing(app, client, world, login):
    """Given an id of 2**31 - 1 (PostgreSQL's INTEGER), when a record's page is requested, then its rule
    matches and answers 404."""
    login(world.global_admin)
    largest = 2**31 - 1

    assert app.url_map.bind("localhost").match(f"/orgs/org-a/integration/records/{largest}") == (
        "status.record", {"org": "org-a", "record_id": largest})
    assert client.get(f"/orgs/org-a/integration/records/{largest}").status_code == 404


@pytest.mark.parametrize("name", ["after", "before"])
@pytest.mark.parametrize("alert_id", [2**31, 2**63, 10**30])
def test_given_an_alerts_page_cursor_with_an_id_no_column_can_hold_then_it_answers_400(
        client, world, login, name, alert_id):
    login(world.global_admin)

    response = client.get(f"/orgs/org-a/alerts?{name}=2024-01-01T00:00:00_{alert_id}")

    assert response.status_code == 400
