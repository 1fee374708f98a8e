"""The sync log's write (issue 16, item 4): a record's new state whichever columns its UPDATE leaves out, and the
indexes it maintains, as the models and the migrations define them."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Iterator

import sqlalchemy as sa
from flask_migrate import upgrade

from dashboard.extensions import db as _db
from dashboard.models import HourlyAttemptCount, SyncRecord
from dashboard.sync.log import Outcome, record_batch
from tests import factories
from tests.integration.test_seed_and_schema import _scratch_app
from tests.sql_capture import statements as sql_statements

T = datetime(2026, 11, 20, 12, 0, 0)
STATE = ("status", "consecutive_failures", "auto_attempts", "next_attempt_at", "last_attempt_at", "last_error_code",
         "last_error_message", "synced_at", "external_id", "retry_requested_by_id")


def _write(connector, outcomes):  # type: ignore[no-untyped-def]
    record_batch(connector, outcomes, source="orchestrator", started_at=T, finished_at=T + timedelta(minutes=1),
                 max_auto_attempts=5)
    _db.session.commit()


def _state(record_id: int) -> dict:
    _db.session.expire_all()
    record = _db.session.get(SyncRecord, record_id)
    return {name: getattr(record, name) for name in STATE}


def _ok(record, minutes: int, external_id: str = "V-1") -> Outcome:  # type: ignore[no-untyped-def]
    return Outcome(record_id=record.id, attempted_at=T + timedelta(minutes=minutes), ok=True, external_id=external_id)


def _failed(record, minutes: int, code: str = "timeout") -> Outcome:  # type: ignore[no-untyped-def]
    return Outcome(record_id=record.id, attempted_at=T + timedelta(minutes=minutes), ok=False, error_code=code,
                   error_message=f"{code} from the ledger")


def _synced(connector):  # type: ignore[no-untyped-def]
    return factories.record(connector, status="synced", synced_at=T - timedelta(days=1), external_id="V-0",
                            last_attempt_at=T - timedelta(days=1))


def _failing(connector, retry_by=None):  # type: ignore[no-untyped-def]
    return factories.record(connector, status="failed", consecutive_failures=2, auto_attempts=2,
                            next_attempt_at=T + timedelta(minutes=2), last_attempt_at=T - timedelta(minutes=5),
                            last_error_code="timeout", last_error_message="timeout from the ledger",
                            retry_requested_by_id=retry_by)


def test_given_a_synced_record_when_it_syncs_again_then_only_its_sync_details_change(world, db):
    record = _synced(world.connector_a)

    _write(world.connector_a, [_ok(record, 1, "V-2")])

    assert _state(record.id) == {
        "status": "synced", "consecutive_failures": 0, "auto_attempts": 0, "next_attempt_at": None,
        "last_attempt_at": T + timedelta(minutes=1), "last_error_code": None, "last_error_message": None,
        "synced_at": T + timedelta(minutes=1), "external_id": "V-2", "retry_requested_by_id": None}


def test_given_a_failing_record_retried_by_hand_when_it_fails_again_with_its_error_then_the_retry_is_spent(
        world, db):
    """Same status and error code, so neither is written; the requester of the manual retry is cleared."""
    record = _failing(world.connector_a, retry_by=world.admin_a.id)

    _write(world.connector_a, [_failed(record, 1)])

    assert _state(record.id) == {
        "status": "failed", "consecutive_failures": 3, "auto_attempts": 3,
        "next_attempt_at": T + timedelta(minutes=1, seconds=240), "last_attempt_at": T + timedelta(minutes=1),
        "last_error_code": "timeout", "last_error_message": "timeout from the ledger",
        "synced_at": None, "external_id": None, "retry_requested_by_id": None}


def test_given_records_in_every_state_when_one_batch_moves_them_then_each_has_its_last_attempts_state(world, db):
    """A record that failed and then synced in one batch, one that synced and then failed, a synced one that
    fails, a failing one that syncs, and an excluded one that fails: one batch, several shapes of UPDATE."""
    connector = world.connector_a
    fail_then_sync, sync_then_fail = _failing(connector), _synced(connector)
    newly_failing, recovering = _synced(connector), _failing(connector, retry_by=world.admin_a.id)
    excluded = factories.record(connector, status="excluded", excluded_reason="Paid in cash")

    _write(connector, [
        _failed(fail_then_sync, 1, "account_mapping_missing"), _ok(fail_then_sync, 2, "V-fs"),
        _ok(sync_then_fail, 1, "V-sf"), _failed(sync_then_fail, 2, "invalid_vat_code"),
        _failed(newly_failing, 3), _ok(recovering, 3, "V-r"), _failed(excluded, 4, "validation_failed"),
    ])

    assert _state(fail_then_sync.id) == {
        "status": "synced", "consecutive_failures": 0, "auto_attempts": 0, "next_attempt_at": None,
        "last_attempt_at": T + timedelta(minutes=2), "last_error_code": None, "last_error_message": None,
        "synced_at": T + timedelta(minutes=2), "external_id": "V-fs", "retry_requested_by_id": None}
    assert _state(sync_then_fail.id) == {
        "status": "failed", "consecutive_failures": 1, "auto_attempts": 1,
        "next_attempt_at": T + timedelta(minutes=2, seconds=300), "last_attempt_at": T + timedelta(minutes=2),
        "last_error_code": "invalid_vat_code", "last_error_message": "invalid_vat_code from the ledger",
        "synced_at": T + timedelta(minutes=1), "external_id": "V-sf", "retry_requested_by_id": None}
    assert _state(newly_failing.id) == {
        "status": "failed", "consecutive_failures": 1, "auto_attempts": 1,
        "next_attempt_at": T + timedelta(minutes=3, seconds=60), "last_attempt_at": T + timedelta(minutes=3),
        "last_error_code": "timeout", "last_error_message": "timeout from the ledger",
        "synced_at": T - timedelta(days=1), "external_id": "V-0", "retry_requested_by_id": None}
    assert _state(recovering.id) == {
        "status": "synced", "consecutive_failures": 0, "auto_attempts": 0, "next_attempt_at": None,
        "last_attempt_at": T + timedelta(minutes=3), "last_error_code": None, "last_error_message": None,
        "synced_at": T + timedelta(minutes=3), "external_id": "V-r", "retry_requested_by_id": None}
    assert _state(excluded.id)["status"] == "excluded"
    assert _state(excluded.id)["last_error_code"] == "validation_failed"


def test_given_a_synced_record_when_it_syncs_again_then_its_update_names_no_indexed_state_column(world, db):
    """The write's cost is index maintenance: naming a column rewrites its index entries even to the same value."""
    record = _synced(world.connector_a)
    db.session.commit()
    with sql_statements(db.engine) as statements:
        _write(world.connector_a, [_ok(record, 1)])

    updates = [s for s in statements if s.startswith("UPDATE sync_records")]
    assert len(updates) == 1
    for column in ("status", "last_error_code", "next_attempt_at", "retry_requested_by_id"):
        assert f"{column} =" not in updates[0]


def test_given_a_connector_in_the_session_when_batches_are_written_then_it_reads_their_times_never_an_older_success(
        world, db):
    """The connector's times are written by plain SQL and set as the session's loaded values: nothing left to flush,
    the same values after the commit, and an older success than the one noted does not move it back."""
    connector, record = world.connector_a, _synced(world.connector_a)
    connector.last_success_at = T + timedelta(minutes=5)
    db.session.commit()

    record_batch(connector, [_ok(record, 2)], source="orchestrator", started_at=T, finished_at=T + timedelta(minutes=3),
                 max_auto_attempts=5)

    assert connector not in db.session.dirty
    assert (connector.last_batch_at, connector.last_success_at) == (T + timedelta(minutes=3), T + timedelta(minutes=5))
    record_batch(connector, [_ok(record, 7)], source="orchestrator", started_at=T, finished_at=T + timedelta(minutes=8),
                 max_auto_attempts=5)
    db.session.commit()
    db.session.expire_all()
    assert (connector.last_batch_at, connector.last_success_at) == (T + timedelta(minutes=8), T + timedelta(minutes=7))


def test_given_records_loaded_in_the_session_when_a_batch_moves_them_then_they_read_their_new_state(world, db):
    """The records' rows change behind the ORM: their loaded objects must not keep the old state."""
    failing, synced = _failing(world.connector_a), _synced(world.connector_a)
    db.session.commit()
    assert (failing.status, synced.status) == ("failed", "synced")

    record_batch(world.connector_a, [_ok(failing, 1, "V-9"), _failed(synced, 2, "invalid_vat_code")],
                 source="orchestrator", started_at=T, finished_at=T + timedelta(minutes=3), max_auto_attempts=5)

    assert (failing.status, failing.external_id, failing.next_attempt_at) == ("synced", "V-9", None)
    assert (synced.status, synced.last_error_code, synced.consecutive_failures) == ("failed", "invalid_vat_code", 1)


def test_given_counts_for_an_hour_when_a_batch_spans_it_and_the_next_then_each_hour_adds_its_attempts(world, db):
    record, other = _synced(world.connector_a), _synced(world.connector_a)
    _write(world.connector_a, [_failed(record, 50)])

    _write(world.connector_a, [_ok(record, 55), _failed(other, 56), _ok(other, 61), _ok(record, 62)])

    rows = db.session.execute(sa.select(HourlyAttemptCount.hour, HourlyAttemptCount.successes,
                                        HourlyAttemptCount.failures)
                              .where(HourlyAttemptCount.organization_id == world.connector_a.organization_id)
                              .order_by(HourlyAttemptCount.hour)).all()
    assert [tuple(r) for r in rows] == [(T, 1, 2), (T + timedelta(hours=1), 2, 0)]


def test_given_the_migrations_when_they_build_a_database_then_its_record_indexes_are_the_models(app, tmp_path):
    """Partial indexes: compare_metadata does not compare an index's WHERE, so compare the stored definitions."""
    with _scratch_app(app, tmp_path).app_context(), _loggers_kept():
        upgrade()
        migrated = _index_definitions()
        _db.drop_all()
        _db.create_all()
        modelled = _index_definitions()
        _db.engine.dispose()
    assert migrated == modelled
    assert "last_error_code IS NOT NULL" in migrated["ix_sync_records_org_error_amount"]


@contextmanager
def _loggers_kept() -> Iterator[None]:
    """The migrations' env.py configures logging from alembic.ini, which disables the loggers that exist (later
    tests read the app's log records): enable them again afterwards."""
    enabled = [logger for logger in logging.root.manager.loggerDict.values()
               if isinstance(logger, logging.Logger) and not logger.disabled]
    try:
        yield
    finally:
        for logger in enabled:
            logger.disabled = False


def _index_definitions() -> dict[str, str]:
    """Each index of sync_records by name, as the database stores its definition."""
    with _db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            rows = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'sync_records'").all()
        else:
            rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                        "AND tbl_name = 'sync_records' AND sql IS NOT NULL").all()
    return {name: " ".join(sql.replace('"', "").split()) for name, sql in rows}
