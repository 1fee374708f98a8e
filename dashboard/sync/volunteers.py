"""How many volunteers wait for the money of a set of records, counted by their volunteer reference.

A record's `volunteer_ref` is optional (an outside orchestrator may not send it),
so the count is a lower bound whenever some records have none: each of those may
be owed to a volunteer not counted yet. Screens say "at least N volunteers" then.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import SyncRecord


@dataclass(frozen=True)
class VolunteerCount:
    count: int
    """Distinct volunteer references among the records."""
    unknown: int
    """Records without a volunteer reference; when above 0, `count` is a lower bound."""


def waiting_volunteers(record_ids: sa.Select) -> VolunteerCount:
    """The volunteers owed the money of these records (a select of `SyncRecord.id`s; duplicates count once).

    One query; the records are found by their primary key, which is all the index it needs. The caller picks
    the records (an alert's affected records not yet synced, say): this counts, it does not filter.
    """
    count, unknown = db.session.execute(
        sa.select(sa.func.count(sa.distinct(SyncRecord.volunteer_ref)),
                  sa.func.count() - sa.func.count(SyncRecord.volunteer_ref))
        .where(SyncRecord.id.in_(record_ids))
    ).one()
    return VolunteerCount(count=count, unknown=unknown)
