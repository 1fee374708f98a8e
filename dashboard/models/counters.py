"""Indexes over the maintained counters, for the pages that rank by them.

The hourly attempt counts (`HourlyAttemptCount`, kept by the sync-log writer) are
read by the platform page for every organization at once: the failures of its last
24 hours. This index covers that read with the counts themselves, and holds only the
hours that had a failure, so a healthy organization costs one seek that finds nothing.
"""
from __future__ import annotations

import sqlalchemy as sa

from dashboard.models.sync_log import HourlyAttemptCount

FAILING_HOURS = sa.Index(
    "ix_hourly_attempt_counts_failing",
    HourlyAttemptCount.organization_id,
    HourlyAttemptCount.hour,
    HourlyAttemptCount.failures,
    sqlite_where=sa.text("failures > 0"),
    postgresql_where=sa.text("failures > 0"),
)
