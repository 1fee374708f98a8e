"""Database engine behaviour that every process needs.

SQLite serves web, workers and cron at once only in WAL mode with a busy
timeout. A transaction that reads and then writes must start with
``BEGIN IMMEDIATE``: a deferred one gets SQLITE_BUSY at once when it tries to
upgrade its lock. Jobs and state-changing requests mark their transactions as
writers with :func:`writer`; reads stay deferred so pages never wait for them.
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_immediate: contextvars.ContextVar[bool] = contextvars.ContextVar("immediate", default=False)


@contextmanager
def writer() -> Iterator[None]:
    """Begin SQLite transactions in this block with BEGIN IMMEDIATE."""
    token = _immediate.set(True)
    try:
        yield
    finally:
        _immediate.reset(token)


def mark_writer() -> contextvars.Token[bool]:
    """Mark the rest of this request as a writer; reset the returned token when it ends."""
    return _immediate.set(True)


def unmark_writer(token: contextvars.Token[bool]) -> None:
    _immediate.reset(token)


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # SQLAlchemy's begin event issues BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _immediate.get() else "BEGIN")
