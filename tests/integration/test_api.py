"""The ingestion API: token auth, strict validation that writes nothing, batches, idempotency, OpenAPI, tokens CLI."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from dashboard.models import ApiToken, HourlyAttemptCount, SyncAttempt, SyncBatch, SyncRecord
from dashboard.queues import alerts_queue
from dashboard.tokens import create_token, find_token, hash_token
from tests import factories

URL = "/api/v1/sync-batches"
MAX_ATTEMPTS = 5
NOW = datetime.now(timezone.utc)


@pytest.fixture()
def app_config() -> dict:
    return {"API_MAX_ATTEMPTS_PER_REQUEST": MAX_ATTEMPTS}


@pytest.fixture()
def token(world, db) -> str:
    plaintext = create_token(world.org_a, "external orchestrator")
    db.session.commit()
    return plaintext


@pytest.fixture()
def post(client, token):  # type: ignore[no-untyped-def]
    """POST a body (a dict is sent as JSON) with organization A's token unless other headers are given."""

    def _post(body: Any, headers: dict[str, str] | None = None, content_type: str = "application/json"):  # type: ignore[no-untyped-def]
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        headers = {"Authorization": f"Bearer {token}"} if headers is None else headers
        return client.post(URL, data=data, headers=headers, content_type=content_type)

    return _post


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def attempt(ref: str = "EXP-1", outcome: str = "failure", minutes_ago: int = 30, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "record_ref": ref, "record_type": "expense_claim", "amount_minor": 125_00, "currency": "NOK",
        "approved_at": _iso(NOW - timedelta(days=1)), "attempted_at": _iso(NOW - timedelta(minutes=minutes_ago)),
        "outcome": outcome,
    }
    if outcome == "failure":
        body.update(error_code="account_mapping_missing", error_message="No ledger account is mapped for expense_claim")
    else:
        body.update(external_id="V-1001")
    body.update(fields)
    return body


def valid_payload(connector_id: int) -> dict[str, Any]:
    return {"connector": connector_id, "attempts": [attempt("EXP-1"), attempt("EXP-2", outcome="success")]}


def written_rows(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Committed rows of the sync log (a rollback first drops whatever a request left unflushed or uncommitted)."""
    db.session.rollback()
    return {model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (SyncBatch, SyncAttempt, SyncRecord, HourlyAttemptCount)}


NOTHING_WRITTEN = {"SyncBatch": 0, "SyncAttempt": 0, "SyncRecord": 0, "HourlyAttemptCount": 0}

Mutation = Callable[[dict[str, Any], Any], Any]
"""Changes the valid payload in place (returning None), or returns another body to send."""


def _attempt0(**fields: Any) -> Mutation:
    return lambda payload, world: payload["attempts"][0].update(fields)


def _drop(name: str, index: int | None = None) -> Mutation:
    def mutate(payload: dict[str, Any], world: Any) -> None:
        del (payload if index is None else payload["attempts"][index])[name]

    return mutate


BAD_PAYLOADS: list[tuple[str, str, Mutation]] = [
    ("unknown top-level field", "dry_run", lambda p, w: p.update(dry_run=True)),
    ("unknown attempt field", "attempts[0].volunteer", _attempt0(volunteer="Kari")),
    ("connector missing", "connector", _drop("connector")),
    ("connector as a name", "connector", lambda p, w: p.update(connector="Sandbox")),
    ("connector of another organization", "connector", lambda p, w: p.update(connector=w.connector_b.id)),
    ("connector that does not exist", "connector", lambda p, w: p.update(connector=999_999)),
    ("attempts empty", "attempts", lambda p, w: p.update(attempts=[])),
    ("attempts not a list", "attempts", lambda p, w: p.update(attempts={"record_ref": "EXP-1"})),
    ("too many attempts", "attempts",
     lambda p, w: p.update(attempts=[attempt(f"EXP-{i}") for i in range(MAX_ATTEMPTS + 1)])),
    ("record_ref missing", "attempts[0].record_ref", _drop("record_ref", 0)),
    ("record_ref empty", "attempts[0].record_ref", _attempt0(record_ref="")),
    ("record_ref over 100 characters", "attempts[0].record_ref", _attempt0(record_ref="R" * 101)),
    ("record_ref a number", "attempts[0].record_ref", _attempt0(record_ref=17)),
    ("unknown record type", "attempts[0].record_type", _attempt0(record_type="invoice")),
    ("negative amount", "attempts[0].amount_minor", _attempt0(amount_minor=-1)),
    ("amount as a string", "attempts[0].amount_minor", _attempt0(amount_minor="12500")),
    ("amount with decimals", "attempts[0].amount_minor", _attempt0(amount_minor=125.5)),
    ("amount as a boolean", "attempts[0].amount_minor", _attempt0(amount_minor=True)),
    ("amount over the column's range", "attempts[0].amount_minor", _attempt0(amount_minor=2**63)),
    ("currency in lower case", "attempts[0].currency", _attempt0(currency="nok")),
    ("currency of four letters", "attempts[0].currency", _attempt0(currency="NOKK")),
    ("approved_at not a time", "attempts[0].approved_at", _attempt0(approved_at="yesterday")),
    ("approved_at in the future", "attempts[0].approved_at",
     _attempt0(approved_at=_iso(NOW + timedelta(days=2)))),
    ("attempted_at without a time zone", "attempts[0].attempted_at",
     _attempt0(attempted_at=(NOW - timedelta(minutes=5)).replace(tzinfo=None).isoformat())),
    ("attempted_at in the future", "attempts[0].attempted_at",
     _attempt0(attempted_at=_iso(NOW + timedelta(hours=1)))),
    ("attempted_at before year 1 in UTC", "attempts[0].attempted_at",
     _attempt0(attempted_at="0001-01-01T00:30:00+01:00")),
    ("attempted_at as a Unix time", "attempts[0].attempted_at", _attempt0(attempted_at=1_700_000_000)),
    ("unknown outcome", "attempts[0].outcome", _attempt0(outcome="partial")),
    ("failure without error_code", "attempts[0].error_code", _drop("error_code", 0)),
    ("failure with a null error_code", "attempts[0].error_code", _attempt0(error_code=None)),
    ("unknown error code", "attempts[0].error_code", _attempt0(error_code="disk_full")),
    ("success with an error_code", "attempts[1].error_code",
     lambda p, w: p["attempts"][1].update(error_code="timeout")),
    ("success with an error_message", "attempts[1].error_message",
     lambda p, w: p["attempts"][1].update(error_message="all good")),
    ("failure with an external_id", "attempts[0].external_id", _attempt0(external_id="V-1")),
    ("error_message over 1000 characters", "attempts[0].error_message", _attempt0(error_message="x" * 1001)),
    ("external_id over 200 characters", "attempts[1].external_id",
     lambda p, w: p["attempts"][1].update(external_id="V" * 201)),
    ("one record reported with two amounts", "attempts[1].amount_minor",
     lambda p, w: p["attempts"].__setitem__(1, attempt("EXP-1", minutes_ago=10, amount_minor=1))),
    ("body is a list", "body", lambda p, w: [p]),
]


@pytest.mark.parametrize(("field", "mutate"), [pytest.param(f, m, id=i) for i, f, m in BAD_PAYLOADS])
def test_bad_payload_is_refused_naming_the_field_and_writes_nothing(post, world, db, field, mutate):
    """Given a valid payload with one defect,
    when organization A posts it,
    then it answers 422 naming the bad field, and no batch, attempt or record is written."""
    payload = valid_payload(world.connector_a.id)
    body = mutate(payload, world) or payload

    response = post(body)

    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["status"] == 422
    assert field in [f["field"] for f in error["fields"]], error
    assert written_rows(db) == NOTHING_WRITTEN


def test_every_bad_field_is_named_at_once(post, world, db):
    """Given a payload with four defects in two attempts and the connector,
    when it is posted,
    then the 422 names all four fields."""
    payload = valid_payload(world.connector_b.id)
    payload["attempts"][0].update(amount_minor=-5, currency="kr")
    payload["attempts"][1].update(error_code="timeout")

    error = post(payload).get_json()["error"]

    assert {f["field"] for f in error["fields"]} == {
        "connector", "attempts[0].amount_minor", "attempts[0].currency", "attempts[1].error_code"}
    assert written_rows(db) == NOTHING_WRITTEN


@pytest.mark.parametrize("raw", [b"{", b"", b'{"connector": 1,}', b"\xff\xfe"])
def test_invalid_json_is_400(post, world, db, raw):
    """Given a body that is not JSON, when it is posted, then it answers 400 in JSON and writes nothing."""
    response = post(raw)

    assert response.status_code == 400
    assert response.get_json()["error"]["status"] == 400
    assert written_rows(db) == NOTHING_WRITTEN


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_body_that_is_not_json_is_415(post, world, db, content_type):
    """Given a valid payload sent with another content type, when it is posted, then it answers 415."""
    response = post(json.dumps(valid_payload(world.connector_a.id)), content_type=content_type)

    assert response.status_code == 415
    assert response.get_json()["error"]["status"] == 415
    assert written_rows(db) == NOTHING_WRITTEN


def test_an_oversized_body_is_413(post, world, db, app):
    """Given a body one byte over MAX_CONTENT_LENGTH, when it is posted, then it answers 413 in JSON."""
    payload = valid_payload(world.connector_a.id)
    payload["padding"] = ""
    size = len(json.dumps(payload))
    payload["padding"] = "x" * (app.config["MAX_CONTENT_LENGTH"] - size + 1)

    response = post(payload)

    assert response.status_code == 413
    assert response.get_json()["error"]["status"] == 413
    assert written_rows(db) == NOTHING_WRITTEN


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_an_invalid_idempotency_key_is_400(post, token, world, db, key):
    response = post(valid_payload(world.connector_a.id),
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})

    assert response.status_code == 400
    assert response.get_json()["error"]["fields"][0]["field"] == "Idempotency-Key"
    assert written_rows(db) == NOTHING_WRITTEN


@pytest.mark.parametrize(("headers", "invalid"), [
    pytest.param({}, False, id="no Authorization header"),
    pytest.param({"Authorization": "Bearer dash_not-a-real-token"}, True, id="unknown token"),
    pytest.param({"Authorization": "Bearer "}, True, id="empty token"),
    pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, True, id="basic auth"),
])
def test_missing_or_wrong_token_is_401(post, world, db, headers, invalid):
    """Given no token or a wrong one, when a valid payload is posted,
    then it answers 401 in JSON with a Bearer challenge and writes nothing."""
    response = post(valid_payload(world.connector_a.id), headers=headers)

    assert response.status_code == 401
    assert response.get_json()["error"]["status"] == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert ('error="invalid_token"' in response.headers["WWW-Authenticate"]) is invalid
    assert written_rows(db) == NOTHING_WRITTEN


def test_a_valid_request_writes_one_batch_with_each_attempts_failure_streak(post, world, db):
    """Given record EXP-1 failing three times (sent out of time order) and a new record EXP-2 succeeding,
    when the batch is posted,
    then one API batch holds the four attempts in time order with streaks 1, 2, 3 and 0,
    the records carry their new state, and the batch's evaluation is queued."""
    payload = {"connector": world.connector_a.id, "attempts": [
        attempt("EXP-1", minutes_ago=10, error_code="timeout", error_message="third"),
        attempt("EXP-1", minutes_ago=50, error_message="first"),
        attempt("EXP-2", outcome="success", minutes_ago=40, record_type="mileage_claim", amount_minor=4_20),
        attempt("EXP-1", minutes_ago=30, error_message="second"),
    ]}

    response = post(payload)

    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    batch = db.session.get(SyncBatch, body["batch_id"])
    assert body == {"batch_id": batch.id, "attempts": 4, "failures": 3, "skipped": 0}
    assert (batch.source, batch.organization_id, batch.connector_id) == ("api", world.org_a.id, world.connector_a.id)
    assert batch.response_body == body
    attempts = db.session.scalars(sa.select(SyncAttempt).where(SyncAttempt.batch_id == batch.id)
                                  .order_by(SyncAttempt.id)).all()
    assert [(a.error_message, a.failure_streak) for a in attempts] == [
        ("first", 1), (None, 0), ("second", 2), ("third", 3)]
    assert attempts[-1].error_code == "timeout"
    records = {r.source_ref: r for r in db.session.scalars(sa.select(SyncRecord))}
    assert (records["EXP-1"].status, records["EXP-1"].consecutive_failures) == ("failed", 3)
    assert (records["EXP-2"].status, records["EXP-2"].external_id) == ("synced", "V-1001")
    assert (records["EXP-2"].record_type, records["EXP-2"].amount_minor) == ("mileage_claim", 4_20)
    assert f"evaluate-batch-{batch.id}" in alerts_queue().job_ids


def _volunteer_refs(db) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    db.session.rollback()
    return dict(db.session.execute(sa.select(SyncRecord.source_ref, SyncRecord.volunteer_ref)).tuples().all())


def test_a_new_records_volunteer_reference_is_stored_and_a_record_reported_without_one_has_none(post, world, db):
    """Given three new records, one reported with a volunteer reference on its second attempt only, one with
    none and one with a reference made of letters beyond ASCII and inner spaces,
    when the batch is posted, then each record stores the reference it was given, or none."""
    payload = {"connector": world.connector_a.id, "attempts": [
        attempt("EXP-1", minutes_ago=40),
        attempt("EXP-1", minutes_ago=20, volunteer_ref="vol-1042"),
        attempt("EXP-2", outcome="success"),
        attempt("EXP-3", volunteer_ref="Frivillig Åse 7"),
    ]}

    assert post(payload).status_code == 201

    assert _volunteer_refs(db) == {"EXP-1": "vol-1042", "EXP-2": None, "EXP-3": "Frivillig Åse 7"}


def test_a_known_record_without_a_volunteer_reference_takes_the_first_one_reported(post, world, db):
    """Given a record the platform created without a volunteer reference,
    when the API reports an attempt of it with one, then the record stores it,
    and a later report of it without one leaves it as it is."""
    factories.record(world.connector_a, (NOW - timedelta(days=1)).replace(tzinfo=None), source_ref="EXP-9",
                     volunteer_ref=None)
    db.session.commit()

    assert post({"connector": world.connector_a.id,
                 "attempts": [attempt("EXP-9", minutes_ago=30, volunteer_ref="vol-7")]}).status_code == 201
    assert post({"connector": world.connector_a.id, "attempts": [attempt("EXP-9", minutes_ago=20)]}).status_code == 201

    assert _volunteer_refs(db) == {"EXP-9": "vol-7"}


def test_a_batch_sent_again_with_volunteer_references_skips_its_attempts_and_names_the_volunteers(post, world, db):
    """Given a batch logged without volunteer references, when it is sent again with them, then its attempts
    are skipped as logged (200) and its records take the references: a client can fill them in afterwards."""
    payload = valid_payload(world.connector_a.id)
    assert post(payload).status_code == 201
    for report, ref in zip(payload["attempts"], ("vol-1", "vol-2")):
        report["volunteer_ref"] = ref

    response = post(payload)

    assert (response.status_code, response.get_json()["skipped"]) == (200, 2)
    assert _volunteer_refs(db) == {"EXP-1": "vol-1", "EXP-2": "vol-2"}


def test_a_known_record_reported_with_the_volunteer_reference_it_has_is_written(post, world, db):
    factories.record(world.connector_a, (NOW - timedelta(days=1)).replace(tzinfo=None), source_ref="EXP-9",
                     volunteer_ref="vol-7")
    db.session.commit()

    response = post({"connector": world.connector_a.id, "attempts": [attempt("EXP-9", volunteer_ref="vol-7")]})

    assert response.status_code == 201, response.get_data(as_text=True)
    assert written_rows(db)["SyncAttempt"] == 1


def test_times_are_stored_as_naive_utc(post, world, db):
    """Given an attempt reported at 12:00+02:00, when it is posted, then the log stores 10:00 without a zone."""
    local = (NOW - timedelta(hours=3)).astimezone(timezone(timedelta(hours=2))).replace(microsecond=0)
    payload = {"connector": world.connector_a.id, "attempts": [attempt(attempted_at=local.isoformat())]}

    assert post(payload).status_code == 201

    stored = db.session.scalar(sa.select(SyncAttempt.attempted_at))
    assert stored == local.astimezone(timezone.utc).replace(tzinfo=None)


def test_an_existing_record_continues_its_streak(post, world, db):
    """Given a record of connector A that has failed twice, when the API reports a third failure,
    then that attempt's streak is 3 and no second record is created."""
    approved_at = (NOW - timedelta(days=1)).replace(tzinfo=None)  # as the report below says
    record = factories.record(world.connector_a, approved_at, source_ref="EXP-9", status="failed",
                              consecutive_failures=2)
    db.session.commit()

    response = post({"connector": world.connector_a.id, "attempts": [attempt("EXP-9")]})

    assert response.status_code == 201
    assert db.session.scalar(sa.select(SyncAttempt.failure_streak)) == 3
    assert written_rows(db)["SyncRecord"] == 1
    assert db.session.get(SyncRecord, record.id).consecutive_failures == 3


def test_a_retry_with_the_same_idempotency_key_returns_the_first_response(post, token, world, db):
    """Given an accepted request with an Idempotency-Key,
    when the same request is posted again with that key,
    then it answers 201 with the first response and writes nothing more."""
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "run-2024-12-01T10:00"}
    payload = valid_payload(world.connector_a.id)
    first = post(payload, headers=headers)
    after_first = written_rows(db)

    again = post(payload, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert written_rows(db) == after_first == {"SyncBatch": 1, "SyncAttempt": 2, "SyncRecord": 2,
                                               "HourlyAttemptCount": 1}


def test_an_idempotency_key_belongs_to_its_organization(post, token, world, db):
    """Given organization A used a key, when organization B posts with the same key, then B's batch is written."""
    post(valid_payload(world.connector_a.id), headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"})
    token_b = create_token(world.org_b, "b")
    db.session.commit()

    response = post(valid_payload(world.connector_b.id),
                    headers={"Authorization": f"Bearer {token_b}", "Idempotency-Key": "k-1"})

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert written_rows(db)["SyncBatch"] == 2


def test_a_refused_request_does_not_use_up_its_idempotency_key(post, token, world, db):
    """Given a request refused with 422, when it is corrected and retried with the same key, then it is written."""
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "k-2"}
    bad = valid_payload(world.connector_a.id)
    bad["attempts"][0]["amount_minor"] = -1
    assert post(bad, headers=headers).status_code == 422

    response = post(valid_payload(world.connector_a.id), headers=headers)

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers


def test_a_successful_request_marks_the_token_used(post, token, world, db):
    assert post(valid_payload(world.connector_a.id)).status_code == 201

    db.session.rollback()
    assert find_token(token).last_used_at is not None


def test_openapi_document_describes_the_endpoint(client, app):
    """Given no token, when the OpenAPI document is fetched, then it is OpenAPI 3.1 JSON describing
    the endpoint, its bearer auth, its request body and its 201/400/401/413/415/422 responses."""
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    document = json.loads(response.get_data(as_text=True))
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        **document["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    operation = document["paths"]["/api/v1/sync-batches"]["post"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert {"201", "400", "401", "413", "415", "422"} <= set(operation["responses"])
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["attempts"]["maxItems"] == app.config["API_MAX_ATTEMPTS_PER_REQUEST"]
    _assert_refs_resolve(document, document)


def _assert_refs_resolve(document: dict[str, Any], node: Any) -> None:
    if isinstance(node, dict):
        if "$ref" in node:
            _, section, kind, name = node["$ref"].split("/")
            assert name in document[section][kind], node["$ref"]
        for value in node.values():
            _assert_refs_resolve(document, value)
    elif isinstance(node, list):
        for value in node:
            _assert_refs_resolve(document, value)


def test_tokens_create_prints_a_token_that_authenticates(runner, world, db):
    """Given organization A, when `flask tokens create org-a --name ERP` runs,
    then it prints a token once, stores only its hash, and the token belongs to organization A."""
    result = runner.invoke(args=["tokens", "create", "org-a", "--name", "ERP"])

    assert result.exit_code == 0, result.output
    plaintext = result.output.strip().splitlines()[-1]
    assert plaintext.startswith("dash_")
    db.session.rollback()
    stored = db.session.scalar(sa.select(ApiToken))
    assert (stored.name, stored.organization_id) == ("ERP", world.org_a.id)
    assert stored.token_hash == hash_token(plaintext) != plaintext
    assert find_token(plaintext).id == stored.id


@pytest.mark.parametrize("args", [["tokens", "create", "no-such-org", "--name", "ERP"],
                                  ["tokens", "create", "org-a", "--name", " "],
                                  ["tokens", "create", "org-a"]])
def test_tokens_create_refuses_bad_input(runner, world, db, args):
    result = runner.invoke(args=args)

    assert result.exit_code != 0
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0
