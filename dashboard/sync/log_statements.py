"""The sync log's statements, in the form its database driver runs them.

A batch writes hundreds of rows. Building and converting them one by one
through the ORM, or through Core's per-row parameter handling, cost more than
the database's own work, so the sync log sends plain tuples of values already
in the driver's form, one executemany per statement (in `CHUNK_ROWS` chunks,
through the session's connection: its transaction and its engine events), and
reads the records' states as the driver returns them.
"""
from __future__ import annotations

import functools
import json
from datetime import datetime
from operator import methodcaller
from typing import Any, Callable

import sqlalchemy as sa

from dashboard.database import CHUNK_ROWS
from dashboard.extensions import db
from dashboard.models import HourlyAttemptCount, SyncRecord


def executemany(sql: str, rows: list[tuple]) -> None:
    """Run a driver-level statement for many rows, `CHUNK_ROWS` at a time, in the session's transaction."""
    connection = db.session.connection()
    for start in range(0, len(rows), CHUNK_ROWS):
        connection.exec_driver_sql(sql, rows[start:start + CHUNK_ROWS])


def insert_sql(table: sa.Table, columns: tuple[str, ...]) -> str:
    names = ", ".join(table.c[c].name for c in columns)
    return f"INSERT INTO {table.name} ({names}) VALUES ({', '.join([_marker()] * len(columns))})"


def update_sql(table: sa.Table, columns: tuple[str, ...]) -> str:
    """An UPDATE of the columns by id: the id is the last value of each row."""
    marker = _marker()
    assignments = ", ".join(f"{table.c[c].name} = {marker}" for c in columns)
    return f"UPDATE {table.name} SET {assignments} WHERE {table.c.id.name} = {marker}"


def _marker() -> str:
    return "?" if _dialect().paramstyle == "qmark" else "%s"


def bind_processor(column: sa.Column) -> Callable[[Any], Any]:
    """How the column's type hands a (non-NULL) value to this database's driver.

    SQLite stores datetimes as text. Every timestamp here is naive UTC, and SQLAlchemy's text for one is the
    datetime's ISO form with a space and microseconds; that form is made in C at a third of the cost, used
    once it gives the type's very text for a probe value.
    """
    process = column.type._cached_bind_processor(_dialect())
    if process is None:
        return _unchanged
    probe = datetime(2001, 2, 3, 4, 5, 6, 7)
    if isinstance(column.type, sa.DateTime) and process(probe) == _iso_text(probe):
        return _iso_text
    return process


_iso_text: Callable[[datetime], str] = methodcaller("isoformat", " ", "microseconds")


def _unchanged(value: Any) -> Any:
    return value


def select_records(columns: tuple[str, ...], ids: list[int]) -> list[tuple]:
    """The columns of the records with these ids as the driver gives them, in id order, each row locked on
    PostgreSQL (FOR UPDATE: two batches of one record take turns, and in id order they cannot deadlock).

    The ids travel as one parameter (an array on PostgreSQL, a JSON list that SQLite reads with json_each):
    rendering an IN list of a thousand parameters costs more than running the query.
    """
    if not ids:
        return []
    dialect = _dialect().name
    ids_value: Any = ids if dialect == "postgresql" else json.dumps(ids)
    return db.session.connection().exec_driver_sql(_select_records(dialect, columns), (ids_value,)).fetchall()


@functools.cache
def _select_records(dialect: str, columns: tuple[str, ...]) -> str:
    table = SyncRecord.__table__
    names = ", ".join(table.c[c].name for c in columns)
    if dialect == "postgresql":
        return f"SELECT {names} FROM {table.name} WHERE id = ANY(%s::integer[]) ORDER BY id FOR UPDATE"
    return f"SELECT {names} FROM {table.name} WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id"


def result_processor(column: sa.Column) -> Callable[[Any], Any]:
    """How this database's driver value of the column becomes the type's Python value (None stays None)."""
    return column.type._cached_result_processor(_dialect(), None) or _unchanged


def hourly_upsert() -> str:
    """The INSERT of an hour's (organization_id, hour, successes, failures) that adds them to the counters
    already there (the same SQL on SQLite and PostgreSQL)."""
    table = HourlyAttemptCount.__table__
    added = ", ".join(f"{name} = {table.name}.{name} + excluded.{name}" for name in ("successes", "failures"))
    return (f"{insert_sql(table, ('organization_id', 'hour', 'successes', 'failures'))} "
            f"ON CONFLICT (organization_id, hour) DO UPDATE SET {added}")


def _dialect() -> sa.Dialect:
    return db.session.get_bind().dialect
