"""Column helpers shared by the models."""
from __future__ import annotations

from datetime import datetime, timezone

from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")


def utcnow() -> datetime:
    """Naive UTC: every timestamp in the database is UTC without tzinfo."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def enum_check(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name)


def of_organization(model: type[T], organization_id: int, object_id: int) -> T | None:
    """The row with this id if it belongs to the organization; None otherwise (tenant scoping in one place)."""
    from dashboard.extensions import db

    table: Any = model
    return db.session.scalar(sa.select(model).where(table.id == object_id, table.organization_id == organization_id))
