"""Database engine behaviour that every process needs.

SQLite serves web, workers and cron at once only in WAL mode. A transaction
that reads and then writes must start with ``BEGIN IMMEDIATE``: a deferred one
gets SQLITE_BUSY at once when it tries to upgrade its lock. Jobs and
state-changing requests mark their transactions as writers with :func:`writer`
(or run them in :func:`write_transaction`); reads stay deferred so pages never
wait for them.

Waiting for the write lock must never stall a process. SQLite's own busy
handler sleeps in C, which freezes a gevent worker's whole event loop (and so
every other request and live stream of that process). So:

- writers of one process queue on a per-database lock of the process (a
  gevent lock under gunicorn's gevent worker, a thread lock elsewhere), so at
  most one of them asks SQLite for the write lock at a time;
- under gevent, SQLite's busy timeout is 0 and ``BEGIN IMMEDIATE`` is retried
  with cooperative sleeps while another process (a worker writing a batch)
  holds the lock; other processes (workers, CLI, threaded test servers) keep
  SQLite's busy wait, which blocks only the waiting thread;
- a writer that cannot have the lock within ``SQLITE_WRITE_WAIT_SECONDS``
  gets :class:`DatabaseBusy`, which the web answers with 503 and Retry-After;
- under gevent, every statement of a writer ends with a cooperative yield,
  and many rows are written in chunks (`execute_in_chunks`), so a long write
  does not keep the event loop from other requests.

Whoever holds a write transaction must not read a socket, call Redis or call
another service before it commits: queue such work for after the commit
(`dashboard.live.publish.queue_event`, `dashboard.queues.enqueue_after_commit`).
"""
from __future__ import annotations

import contextvars
import sqlite3
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.fair_lock import FairSemaphore

_immediate: contextvars.ContextVar[bool] = contextvars.ContextVar("immediate", default=False)
_process_locks: dict[str, FairSemaphore] = {}
_HELD = "dashboard_write_lock"


class DatabaseBusy(Exception):
    """The database could not take a write now (its write lock stayed busy, or it is full)."""

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@contextmanager
def writer() -> Iterator[None]:
    """Begin SQLite transactions in this block with BEGIN IMMEDIATE."""
    token = _immediate.set(True)
    try:
        yield
    finally:
        _immediate.reset(token)


@contextmanager
def write_transaction() -> Iterator[None]:
    """One short write transaction: end the current (read) one, BEGIN IMMEDIATE, commit at the end.

    For views that read first and write afterwards: the reads' snapshot could not be
    upgraded to a writer once another process has committed.
    """
    from dashboard.extensions import db

    db.session.commit()
    with writer():
        try:
            yield
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise


CHUNK_ROWS = 50
"""Rows per executemany: SQLite runs one statement without yielding, so hundreds of rows at once would
keep a gevent worker's loop from every other request for as long as they take."""


def execute_in_chunks(statement: sa.Executable, rows: list[dict[str, Any]]) -> None:
    """Execute a statement for many rows, `CHUNK_ROWS` at a time (each chunk one executemany)."""
    from dashboard.extensions import db

    for start in range(0, len(rows), CHUNK_ROWS):
        db.session.execute(statement, rows[start:start + CHUNK_ROWS])


def mark_writer() -> contextvars.Token[bool]:
    """Mark the rest of this request as a writer; reset the returned token when it ends."""
    return _immediate.set(True)


def unmark_writer(token: contextvars.Token[bool]) -> None:
    _immediate.reset(token)


def read_only_from_now() -> None:
    """The rest of this request only reads (to render an error page after a write was refused)."""
    _immediate.set(False)


def cooperative() -> bool:
    """Whether this process runs on gevent's event loop (gunicorn's gevent worker patches threading)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))


def configure_engine(engine: Engine, write_wait_seconds: float = 10.0) -> None:
    on_event_loop = cooperative()
    if on_event_loop:
        _yield_after_each_statement(engine)
    if engine.dialect.name != "sqlite":
        return
    busy_timeout_ms = 0 if on_event_loop else int(write_wait_seconds * 1000)
    lock = _process_locks.setdefault(str(engine.url), FairSemaphore())

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # SQLAlchemy's begin event issues BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        if not _immediate.get():
            connection.exec_driver_sql("BEGIN")
            return
        deadline = time.monotonic() + write_wait_seconds
        if not lock.acquire(timeout=write_wait_seconds):
            raise DatabaseBusy("Another request of this process held the database's write lock too long")
        connection.info[_HELD] = lock
        try:
            _begin_immediate(connection.connection.dbapi_connection, deadline)
        except BaseException:
            _release(connection.info)
            raise

    @sa.event.listens_for(engine, "commit")
    @sa.event.listens_for(engine, "rollback")
    def _on_end(connection):  # type: ignore[no-untyped-def]
        _release(connection.info)

    @sa.event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        _release(record.info)


def _yield_after_each_statement(engine: Engine) -> None:
    """Let other greenlets run between a writer's statements.

    SQLite's calls never wait on a socket, so a request writing hundreds of rows would keep the
    event loop for its whole transaction (100 ms and more), and every page, health check and
    stream of the process would wait behind it. A zero sleep after each of a writer's statements
    makes database work cooperate like network I/O does. Readers do not yield: their statements
    are short, and a page that went to the back of the queue after each of them would wait for
    every writer's turn.
    """

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _cooperate(_connection, _cursor, _statement, _parameters, context, executemany):  # type: ignore[no-untyped-def]
        if executemany or _immediate.get():
            time.sleep(0)


def _begin_immediate(dbapi_connection: sqlite3.Connection, deadline: float) -> None:
    """BEGIN IMMEDIATE, retried with short sleeps (cooperative under gevent) until the deadline."""
    pause = 0.002
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            if time.monotonic() + pause > deadline:
                raise DatabaseBusy("The database is busy with other writes") from None
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def _release(info: dict) -> None:
    lock = info.pop(_HELD, None)
    if lock is not None:
        lock.release()
