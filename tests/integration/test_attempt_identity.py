"""Attempts are facts with an identity and an order; records are immutable once known (issue #9, item 3)."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from dashboard.models import Alert, Notification, SyncAttempt, SyncBatch, SyncRecord
from tests.integration.test_api import (  # noqa: F401  (fixtures)
    MAX_ATTEMPTS, NOW, app_config, attempt, post, token, valid_payload, written_rows,
)


def test_given_an_accepted_batch_when_it_is_sent_again_without_a_key_then_nothing_is_written_twice(post, world, db):
    """A client that retries after a dropped connection, with no Idempotency-Key, writes its attempts once."""
    payload = valid_payload(world.connector_a.id)
    first = post(payload)
    after_first = written_rows(db)

    second = post(payload)

    assert first.status_code == 201
    assert second.status_code == 200, second.get_data(as_text=True)
    assert second.get_json() == {"batch_id": None, "attempts": 0, "failures": 0, "skipped": 2}
    assert written_rows(db) == after_first


def test_given_a_logged_attempt_when_a_batch_repeats_it_beside_new_ones_then_only_the_new_ones_are_written(
        post, world, db):
    post({"connector": world.connector_a.id, "attempts": [attempt("EXP-1", minutes_ago=30)]})

    response = post({"connector": world.connector_a.id, "attempts": [
        attempt("EXP-1", minutes_ago=30), attempt("EXP-1", minutes_ago=20)]})

    assert response.status_code == 201
    assert response.get_json()["attempts"] == 1 and response.get_json()["skipped"] == 1
    db.session.rollback()
    streaks = db.session.scalars(sa.select(SyncAttempt.failure_streak).order_by(SyncAttempt.attempted_at)).all()
    assert streaks == [1, 2]


def test_given_a_logged_failure_when_the_same_record_and_time_is_reported_as_a_success_then_409_writes_nothing(
        post, world, db):
    post({"connector": world.connector_a.id, "attempts": [attempt("EXP-1", minutes_ago=30)]})
    before = written_rows(db)

    response = post({"connector": world.connector_a.id, "attempts": [
        attempt("EXP-2", minutes_ago=5), attempt("EXP-1", outcome="success", minutes_ago=30)]})

    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["fields"] == [{"field": "attempts[1].outcome",
                                "message": "This attempt is logged as failure (account_mapping_missing), not success"}]
    assert written_rows(db) == before


def test_given_a_known_record_when_it_is_reported_with_another_type_and_amount_then_409_names_both_values(
        post, world, db):
    """The observed harm: a failed 3,996 NOK expense claim silently became a synced 0.01 NOK mileage claim."""
    post({"connector": world.connector_a.id, "attempts": [attempt("EXP-1", amount_minor=3_996_00)]})
    before = written_rows(db)

    response = post({"connector": world.connector_a.id, "attempts": [
        attempt("EXP-1", outcome="success", minutes_ago=1, record_type="mileage_claim", amount_minor=1)]})

    assert response.status_code == 409
    fields = {f["field"]: f["message"] for f in response.get_json()["error"]["fields"]}
    assert fields == {
        "attempts[0].record_type": "Record 'EXP-1' is known with record_type 'expense_claim', not 'mileage_claim'; "
                                   "records cannot be changed once known",
        "attempts[0].amount_minor": "Record 'EXP-1' is known with amount_minor 399600, not 1; "
                                    "records cannot be changed once known",
    }
    assert written_rows(db) == before
    db.session.rollback()
    record = db.session.scalar(sa.select(SyncRecord))
    assert (record.record_type, record.amount_minor, record.status) == ("expense_claim", 3_996_00, "failed")


def test_given_a_known_record_when_its_approval_time_differs_then_409(post, world, db):
    post({"connector": world.connector_a.id, "attempts": [attempt("EXP-1")]})
    other_approval = (NOW - timedelta(days=2)).isoformat()

    response = post({"connector": world.connector_a.id, "attempts": [
        attempt("EXP-1", minutes_ago=1, approved_at=other_approval)]})

    assert response.status_code == 409
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == ["attempts[0].approved_at"]


def test_given_a_used_idempotency_key_when_it_comes_with_another_body_then_422_and_the_new_batch_is_not_lost_silently(
        post, token, world, db):
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "run-1"}
    post(valid_payload(world.connector_a.id), headers=headers)
    before = written_rows(db)

    response = post({"connector": world.connector_a.id, "attempts": [attempt("EXP-3", minutes_ago=3)]},
                    headers=headers)

    assert response.status_code == 422
    assert response.get_json()["error"]["fields"][0]["field"] == "Idempotency-Key"
    assert written_rows(db) == before


def test_given_failures_at_0_1_3_4_minutes_when_the_success_of_minute_2_arrives_last_then_it_is_logged_late_and_moves_nothing(
        post, world, db):
    """The observed harm: the record became synced with 0 failures, its alert resolved and "cleared" went out."""
    from dashboard.alerts.engine import evaluate_batch

    for minutes_ago in (10, 9, 7, 6):
        response = post({"connector": world.connector_a.id, "attempts": [attempt("EXP-1", minutes_ago=minutes_ago)]})
        evaluate_batch(response.get_json()["batch_id"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Alert).where(Alert.status == "open")) == 1

    late = post({"connector": world.connector_a.id, "attempts": [attempt("EXP-1", outcome="success", minutes_ago=8)]})
    evaluate_batch(late.get_json()["batch_id"])

    db.session.rollback()
    record = db.session.scalar(sa.select(SyncRecord))
    assert (record.status, record.consecutive_failures) == ("failed", 4)
    logged = db.session.execute(sa.select(SyncAttempt.outcome, SyncAttempt.failure_streak, SyncAttempt.late)
                                .order_by(SyncAttempt.attempted_at)).all()
    assert [tuple(row) for row in logged] == [("failure", 1, False), ("failure", 2, False), ("success", 0, True),
                                              ("failure", 3, False), ("failure", 4, False)]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Alert).where(Alert.status == "open")) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)
                             .where(Notification.event == "resolved")) == 0


def test_the_sweep_judges_a_batch_by_when_it_was_received_not_by_the_clients_clock(post, world, db):
    """A batch reported with hour-old attempt times is not swept at once: the sweep waits for its own grace."""
    from dashboard.alerts.engine import sweep_unevaluated

    response = post({"connector": world.connector_a.id, "attempts": [attempt("EXP-1", minutes_ago=60)]})

    assert sweep_unevaluated() == []
    db.session.rollback()
    batch = db.session.get(SyncBatch, response.get_json()["batch_id"])
    assert batch.evaluated_at is None and batch.finished_at < batch.received_at - timedelta(minutes=59)


def test_a_late_attempt_is_shown_in_the_records_history_as_reported_late(post, world, db, login):
    post({"connector": world.connector_a.id, "attempts": [attempt("EXP-1", minutes_ago=5)]})
    post({"connector": world.connector_a.id, "attempts": [attempt("EXP-1", outcome="success", minutes_ago=9)]})
    db.session.rollback()
    record = db.session.scalar(sa.select(SyncRecord))

    html = login(world.admin_a).get(f"/orgs/org-a/integration/records/{record.id}").get_data(as_text=True)

    assert html.count("reported late") == 1
