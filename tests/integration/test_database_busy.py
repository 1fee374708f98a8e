"""When the database cannot take a write, the service says so (503 + Retry-After) and never stalls (issue #9, item 1)."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from dashboard.extensions import db as _db
from tests.integration.test_api import (  # noqa: F401  (fixtures)
    MAX_ATTEMPTS, app_config, attempt, post, token, valid_payload, written_rows,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def sqlite_path(app) -> Path:  # type: ignore[no-untyped-def]
    url = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite":
        pytest.skip("SQLite's write lock")
    return Path(url.database)


@pytest.fixture()
def app_config() -> dict:  # noqa: F811
    return {"API_MAX_ATTEMPTS_PER_REQUEST": MAX_ATTEMPTS, "SQLITE_WRITE_WAIT_SECONDS": 0.3}


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as far as this one can tell: a connection holding BEGIN IMMEDIATE."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_given_another_writer_holds_the_lock_past_the_wait_when_a_batch_is_posted_then_503_with_retry_after(
        post, world, db, sqlite_path):
    before, payload = written_rows(db), valid_payload(world.connector_a.id)
    db.session.remove()
    holder = _hold_write_lock(sqlite_path)
    try:
        response = post(payload)
    finally:
        holder.rollback()
        holder.close()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["message"] == "The database is busy with other writes"
    assert written_rows(db) == before


def test_given_the_lock_is_released_within_the_wait_when_a_batch_is_posted_then_it_is_written(
        post, world, db, sqlite_path):
    import threading

    payload = valid_payload(world.connector_a.id)
    db.session.remove()
    holder = _hold_write_lock(sqlite_path)
    threading.Timer(0.1, holder.rollback).start()

    response = post(payload)

    holder.close()
    assert response.status_code == 201, response.get_data(as_text=True)


def test_given_a_full_database_when_a_batch_is_posted_then_503_names_it_and_writes_nothing(post, world, db, sqlite_path):
    before, connector_id = written_rows(db), world.connector_a.id
    db.session.remove()
    _db.engine.dispose()
    with sqlite3.connect(sqlite_path) as compact:
        compact.execute("VACUUM")  # no free pages left for the inserts to reuse

    @sa.event.listens_for(_db.engine, "connect")
    def _no_room(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    try:
        response = post({"connector": connector_id, "attempts": [
            attempt(f"EXP-{n}", error_message="x" * 900, minutes_ago=n) for n in range(MAX_ATTEMPTS)]})
    finally:
        sa.event.remove(_db.engine, "connect", _no_room)
        _db.engine.dispose()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert response.get_json()["error"]["message"] == "The database is full; nothing was written"
    assert written_rows(db) == before


def test_given_a_busy_database_when_an_admin_retries_a_record_then_the_page_says_so_with_503(
        client, login, world, db, sqlite_path):
    from tests import factories

    record_id = factories.record(world.connector_a, status="failed", consecutive_failures=3).id
    db.session.commit()
    login(world.admin_a)
    db.session.remove()
    holder = _hold_write_lock(sqlite_path)
    try:
        response = client.post(f"/orgs/org-a/integration/records/{record_id}/retry")
    finally:
        holder.rollback()
        holder.close()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "The database is busy with other writes" in response.get_data(as_text=True)


_EVENT_LOOP_PROBE = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import sys, time, gevent
    from dashboard import create_app
    from dashboard.database import DatabaseBusy, cooperative, writer
    from dashboard.extensions import db
    import sqlalchemy as sa

    app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1], "REDIS_URL": "unix:///nonexistent",
                      "SQLITE_WRITE_WAIT_SECONDS": 1.0, "TESTING": True})
    assert cooperative()
    ticks = []

    def write():
        with app.app_context(), writer():
            try:
                db.session.execute(sa.text("SELECT 1"))
                return "written"
            except DatabaseBusy:
                return "busy"
            finally:
                db.session.remove()

    def tick():
        for _ in range(40):
            ticks.append(time.monotonic())
            gevent.sleep(0.02)

    writers = [gevent.spawn(write) for _ in range(3)]
    ticker = gevent.spawn(tick)
    gevent.joinall(writers + [ticker])
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    print(",".join(w.value for w in writers), f"{max(gaps):.3f}")
""")


def test_under_gevent_writers_waiting_for_another_processs_lock_never_stall_the_event_loop(sqlite_path, db):
    """Three greenlets want the write lock while another process holds it for 1.5 s: each waits cooperatively
    and gets 503's DatabaseBusy after the 1 s wait, while a fourth greenlet keeps ticking every 20 ms."""
    db.session.remove()
    holder = _hold_write_lock(sqlite_path)
    try:
        result = subprocess.run([sys.executable, "-c", _EVENT_LOOP_PROBE, f"sqlite:///{sqlite_path}"],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        holder.rollback()
        holder.close()

    assert result.returncode == 0, result.stderr
    outcomes, longest_gap = result.stdout.split()
    assert outcomes == "busy,busy,busy"
    assert float(longest_gap) < 0.2, f"the event loop stalled for {longest_gap} s"
