"""What a replay reads of the real database, and the scratch copy it replays in.

`read_world` reads, over one read-only connection to the real database, the
organizations being replayed (with the setting overrides applied), their
admins, the global admins, the platform settings, the connectors (without
their secrets) and the records with their state as of the replay's start,
rebuilt from the sync log: the last on-time attempt before the start decides a
record's status and failure streak, an administrator's exclusion before the
start keeps it excluded. It also reads the log: the attempts of the period, and
a lead-in before it (the error window, and the whole current streak of a
record that was failing at the start) that the rules read back but that is not
evaluated again. `copy_world` writes all of that into the scratch database.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.extensions import db
from dashboard.models import (
    AuditEntry, Connector, Membership, Organization, PlatformSettings, SyncAttempt, SyncBatch, SyncRecord, User,
)
from dashboard.vocabulary import AttemptOutcome, AuditAction, RecordStatus

IN_CHUNK = 5_000
"""Ids per IN (...) list: below every database's limit on bound parameters."""
RATE_LIMIT_LOOKBACKS = 4
"""The connector rule looks back this many rate-limit patience periods (`engine._apply_connector`)."""


@dataclass(frozen=True)
class Attempt:
    """One logged attempt, as the replay feeds it to the sync-log writer."""

    id: int
    batch_id: int
    connector_id: int
    record_id: int
    attempted_at: datetime
    ok: bool
    error_code: str | None
    error_message: str | None
    failure_streak: int
    late: bool


@dataclass(frozen=True)
class Action:
    """An administrator excluding or including a record during the period."""

    at: datetime
    organization_id: int
    record_id: int
    action: str


@dataclass
class World:
    """Everything a replay copies into its scratch database and feeds to the engine."""

    organizations: list[dict[str, Any]]
    users: list[dict[str, Any]]
    memberships: list[dict[str, Any]]
    platform: dict[str, Any]
    connectors: list[dict[str, Any]]
    records: list[dict[str, Any]]
    lead_in: list[Attempt]
    """Attempts before the start that the rules read back (the error window, current streaks)."""
    period: list[Attempt]
    """The attempts to replay, in log order (those that were late when they arrived left out)."""
    actions: list[Action] = field(default_factory=list)

    def statuses_at_start(self) -> dict[int, str]:
        return {r["id"]: r["status"] for r in self.records}


def read_world(source: Connection, organization_ids: list[int], start: datetime, end: datetime,
               organization_settings: Mapping[str, int], platform_settings: Mapping[str, int],
               rate_limit_patience: timedelta, max_auto_attempts: int) -> World:
    """Read what a replay of [start, end) needs; `source` is only read from."""
    organizations = [{**row, **organization_settings} for row in _rows(
        source, sa.select(Organization.__table__).where(Organization.id.in_(organization_ids)).order_by(Organization.id))]
    window = max(timedelta(hours=o["error_window_hours"]) for o in organizations)
    lead_in_start = start - max(window, RATE_LIMIT_LOOKBACKS * rate_limit_patience)

    attempts = _attempts(source, SyncAttempt.organization_id.in_(organization_ids),
                         SyncAttempt.attempted_at >= lead_in_start, SyncAttempt.attempted_at < end)
    records = _rows(source, sa.select(SyncRecord.__table__).where(
        SyncRecord.organization_id.in_(organization_ids), SyncRecord.approved_at < end,
        sa.or_(SyncRecord.status != RecordStatus.SYNCED, SyncRecord.last_attempt_at >= lead_in_start,
               SyncRecord.synced_at >= lead_in_start)))
    known = {r["id"] for r in records}
    missing = {a.record_id for a in attempts} - known
    if missing:  # attempts newer than a record's own last attempt (late ones) name records synced long ago
        records += _rows_in(source, SyncRecord.__table__, SyncRecord.id, missing)

    # Records whose streak, or whose whole story, began before the lead-in: their earlier attempts too.
    first_loaded: dict[int, Attempt] = {}
    for attempt in attempts:
        first_loaded.setdefault(attempt.record_id, attempt)
    older = [r["id"] for r in records
             if (r["id"] not in first_loaded and r["last_attempt_at"] is not None)
             or (r["id"] in first_loaded and not first_loaded[r["id"]].ok and first_loaded[r["id"]].failure_streak > 1)]
    earlier: list[Attempt] = []
    for chunk in _chunks(older):
        earlier += _attempts(source, SyncAttempt.record_id.in_(chunk), SyncAttempt.attempted_at < lead_in_start)
    lead_in = sorted(earlier + [a for a in attempts if a.attempted_at < start], key=lambda a: (a.attempted_at, a.id))
    # An attempt that was late when it arrived changed nothing live: left out, so that the replay's order (by
    # time) cannot make it count.
    period = [a for a in attempts if a.attempted_at >= start and not a.late]

    actions = _actions(source, {r["id"]: r["organization_id"] for r in records}, end)
    _set_state_at_start(records, lead_in, actions, start, max_auto_attempts)

    memberships = _rows(source, sa.select(Membership.__table__).where(
        Membership.organization_id.in_(organization_ids), Membership.role == "admin"))
    users = _rows(source, sa.select(User.__table__).where(sa.or_(
        User.is_global_admin.is_(True), User.id.in_({m["user_id"] for m in memberships}))).order_by(User.id))
    for user in users:
        user["password_hash"] = ""  # a replay signs nobody in
    platform = next(iter(_rows(source, sa.select(PlatformSettings.__table__))), None) or {
        "id": 1, "incident_min_organizations": PlatformSettings.DEFAULT_INCIDENT_MIN_ORGANIZATIONS,
        "grouping_wait_seconds": PlatformSettings.DEFAULT_GROUPING_WAIT_SECONDS}
    connectors = _rows(source, sa.select(Connector.__table__).where(Connector.organization_id.in_(organization_ids)))
    last_success = _last_success_before(lead_in, start)
    for connector in connectors:
        connector.update(secret=None, last_batch_at=None)
        if connector["last_success_at"] is not None and connector["last_success_at"] >= start:
            connector["last_success_at"] = last_success.get(connector["id"])
    return World(organizations=organizations, users=users, memberships=memberships,
                 platform={**platform, **platform_settings}, connectors=connectors, records=records,
                 lead_in=lead_in, period=period, actions=[a for a in actions if a.at >= start])


def copy_world(world: World) -> None:
    """Write the world into the (empty) scratch database of the current app, keeping every id."""
    for table, rows in ((Organization.__table__, world.organizations), (User.__table__, world.users),
                        (Membership.__table__, world.memberships), (PlatformSettings.__table__, [world.platform]),
                        (Connector.__table__, world.connectors), (SyncRecord.__table__, world.records)):
        if rows:
            db.session.execute(table.insert(), rows)
    # The lead-in is history: logged under one evaluated batch per connector, so nothing evaluates it again.
    batches: dict[int, int] = {}
    organization_of = {c["id"]: c["organization_id"] for c in world.connectors}
    first = world.lead_in[0].attempted_at if world.lead_in else None
    for attempt in world.lead_in:
        if attempt.connector_id not in batches:
            batch = SyncBatch(organization_id=organization_of[attempt.connector_id], connector_id=attempt.connector_id,
                              source="orchestrator", started_at=first, finished_at=first, received_at=first,
                              evaluated_at=first)
            db.session.add(batch)
            db.session.flush()
            batches[attempt.connector_id] = batch.id
    if world.lead_in:
        db.session.execute(SyncAttempt.__table__.insert(), [
            {"organization_id": organization_of[a.connector_id], "batch_id": batches[a.connector_id],
             "record_id": a.record_id, "attempted_at": a.attempted_at,
             "outcome": AttemptOutcome.SUCCESS if a.ok else AttemptOutcome.FAILURE, "error_code": a.error_code,
             "error_message": a.error_message, "failure_streak": a.failure_streak, "late": a.late}
            for a in world.lead_in])
    db.session.commit()


# Reading ---------------------------------------------------------------------------------------------------

def _rows(source: Connection, statement: sa.Select) -> list[dict[str, Any]]:
    return [dict(row) for row in source.execute(statement).mappings()]


def _rows_in(source: Connection, table: sa.Table, column: sa.ColumnElement, ids: Iterable[int]) -> list[dict]:
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(ids)):
        rows += _rows(source, sa.select(table).where(column.in_(chunk)))
    return rows


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), IN_CHUNK):
        yield ids[i:i + IN_CHUNK]


def _attempts(source: Connection, *where: sa.ColumnElement[bool]) -> list[Attempt]:
    rows = source.execute(
        sa.select(SyncAttempt.id, SyncAttempt.batch_id, SyncBatch.connector_id, SyncAttempt.record_id,
                  SyncAttempt.attempted_at, SyncAttempt.outcome, SyncAttempt.error_code, SyncAttempt.error_message,
                  SyncAttempt.failure_streak, SyncAttempt.late)
        .join(SyncBatch, SyncBatch.id == SyncAttempt.batch_id).where(*where)
        .order_by(SyncAttempt.attempted_at, SyncAttempt.id)
    ).all()
    return [Attempt(r.id, r.batch_id, r.connector_id, r.record_id, r.attempted_at, r.outcome == AttemptOutcome.SUCCESS,
                    r.error_code, r.error_message, r.failure_streak, bool(r.late)) for r in rows]


def _actions(source: Connection, organization_of: dict[int, int], end: datetime) -> list[Action]:
    """Exclusions and inclusions of the records before `end`, in time order (retries change no state the
    rules read: the attempt they cause is in the log)."""
    actions: list[Action] = []
    for chunk in _chunks(sorted(organization_of)):
        actions += [Action(r.at, organization_of[r.record_id], r.record_id, r.action)
                    for r in source.execute(
                        sa.select(AuditEntry.at, AuditEntry.record_id, AuditEntry.action)
                        .where(AuditEntry.record_id.in_(chunk),
                               AuditEntry.action.in_((AuditAction.RECORD_EXCLUDE, AuditAction.RECORD_INCLUDE)),
                               AuditEntry.at < end))]
    return sorted(actions, key=lambda a: (a.at, a.record_id))


def _set_state_at_start(records: list[dict[str, Any]], before: list[Attempt], actions: list[Action],
                        start: datetime, max_auto_attempts: int) -> None:
    """Each record as it was at the start: its last on-time attempt before it decides its status and streak,
    its last exclusion or inclusion before it whether it is excluded. A record excluded now with neither on file
    was excluded before anything the log shows."""
    last: dict[int, Attempt] = {}
    for attempt in before:
        if not attempt.late:
            last[attempt.record_id] = attempt
    excluded: dict[int, bool] = {}
    for action in actions:
        if action.at < start:
            excluded[action.record_id] = action.action == "exclude"
    has_actions = {a.record_id for a in actions}
    for record in records:
        attempt = last.get(record["id"])
        streak = 0 if attempt is None or attempt.ok else attempt.failure_streak
        if attempt is None:
            status = RecordStatus.PENDING
        else:
            status = RecordStatus.SYNCED if attempt.ok else RecordStatus.FAILED
        if excluded.get(record["id"], record["status"] == RecordStatus.EXCLUDED and record["id"] not in has_actions):
            status = RecordStatus.EXCLUDED
        record.update(
            status=status.value, consecutive_failures=streak, auto_attempts=min(streak, max_auto_attempts),
            next_attempt_at=None, retry_requested_by_id=None,
            last_attempt_at=attempt.attempted_at if attempt else None,
            last_error_code=None if attempt is None or attempt.ok else attempt.error_code,
            last_error_message=None if attempt is None or attempt.ok else attempt.error_message,
            synced_at=attempt.attempted_at if attempt is not None and attempt.ok else None,
        )
        if attempt is None or not attempt.ok:
            record["external_id"] = None


def _last_success_before(attempts: list[Attempt], start: datetime) -> dict[int, datetime]:
    last: dict[int, datetime] = defaultdict(lambda: datetime.min)
    for attempt in attempts:
        if attempt.ok and attempt.attempted_at < start:
            last[attempt.connector_id] = max(last[attempt.connector_id], attempt.attempted_at)
    return dict(last)
