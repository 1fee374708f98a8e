"""Column helpers shared by the models."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa


def utcnow() -> datetime:
    """Naive UTC: every timestamp in the database is UTC without tzinfo."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def enum_check(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name)
