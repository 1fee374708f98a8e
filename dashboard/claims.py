"""How an email or a webhook delivery is taken for sending: exactly once, whoever else tries.

A row is claimed by one conditional UPDATE (pending and due, or `sending` by a worker that died) that the caller
commits before anything leaves; only the worker whose UPDATE changed the row sends it. Emails (notifications and
digests) and webhook deliveries share the columns this needs: `status`, `due_at`, `claimed_at`, `attempts`.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.vocabulary import DeliveryStatus

STALE_CLAIM = timedelta(seconds=60)
"""A row `sending` this long lost its worker (a delivery job's timeout is 10 s): it may be claimed again."""


def claimable(model: Any, now: datetime) -> sa.ColumnElement[bool]:
    """Pending and due, or claimed by a worker that died: one range of the (status, due_at) index, since a
    claimed row was due before it was claimed."""
    return sa.and_(model.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)), model.due_at <= now,
                   sa.or_(model.status == DeliveryStatus.PENDING, model.claimed_at < now - STALE_CLAIM))


def claim(model: Any, row_id: int, now: datetime, *where: sa.ColumnElement[bool]) -> bool:
    """Take the row for sending (`sending`, claimed now, one more attempt) if it is claimable; True if this call
    took it. The caller commits before sending."""
    return bool(db.session.execute(
        sa.update(model).where(model.id == row_id, claimable(model, now), *where)
        .values(status=DeliveryStatus.SENDING, claimed_at=now, attempts=model.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount)
