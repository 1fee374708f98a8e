"""What the integration status screen shows, read with indexed queries and no query per row.

The records table pages by keyset: a cursor holds the sort value and the id of
the row at a page's edge, and the next page starts strictly after it, so rows
inserted between requests never shift a page and no row is skipped or repeated.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from dashboard.extensions import db
from dashboard.models import (
    Alert,
    AlertEvent,
    AlertRecord,
    Connector,
    HourlyAttemptCount,
    Organization,
    RecordAction,
    SyncAttempt,
    SyncRecord,
    User,
    utcnow,
)
from dashboard.models.sync_log import RECORD_STATUSES, RECORD_TYPES
from dashboard.sync.errors import ERROR_CODES
from dashboard.sync.orchestrator import PUSHED_PROVIDERS

PAGE_SIZE = 50
MAX_ID_DIGITS = 18
COUNT_LIMIT = 10_000
"""Counting stops here, so a page costs the same however many records match."""
MAX_SELECTION = 500
"""The most records one bulk retry may name (a page holds 50)."""
HISTORY_LIMIT = 100
FAILED_REFS_SHOWN = 10
WAITING_STATUSES = ("pending", "failed")
SORT_COLUMNS: dict[str, sa.ColumnElement[Any]] = {
    "approved": SyncRecord.approved_at,
    "amount": SyncRecord.amount_minor,
}
SORTS = ("approved", "-approved", "amount", "-amount")
DEFAULT_SORT = "approved"
"""Oldest approval first: the records waiting longest come first."""


class FilterError(ValueError):
    """A filter, sort or cursor in the URL that the screen does not know."""


# The records table: filters, sort and keyset pages.

@dataclass(frozen=True)
class RecordFilters:
    status: str | None = None
    record_type: str | None = None
    error_code: str | None = None
    alert_id: int | None = None
    sort: str = DEFAULT_SORT

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    def args(self, **extra: str | int | None) -> dict[str, str | int]:
        """The URL query of these filters (defaults left out), plus `extra`."""
        values: dict[str, str | int | None] = {
            "status": self.status, "record_type": self.record_type, "error_code": self.error_code,
            "alert": self.alert_id, "sort": None if self.sort == DEFAULT_SORT else self.sort, **extra,
        }
        return {k: v for k, v in values.items() if v not in (None, "")}

    def toggled(self, key: str) -> str:
        """The sort a header button for `key` asks for: the other direction when sorted by it already."""
        if self.sort_key == key:
            return key if self.descending else f"-{key}"
        return "-amount" if key == "amount" else key


def parse_filters(args: MultiDict[str, str]) -> RecordFilters:
    """Filters from a query string; the last `sort` wins (a header button adds one to the form's)."""
    def choice(name: str, allowed: Sequence[str]) -> str | None:
        value = (args.get(name) or "").strip()
        if value and value not in allowed:
            raise FilterError(_("Unknown value for %(name)s: %(value)s.", name=name, value=value[:40]))
        return value or None

    sorts = [s for s in args.getlist("sort") if s]
    sort = sorts[-1] if sorts else DEFAULT_SORT
    if sort not in SORTS:
        raise FilterError(_("Unknown sort order: %(value)s.", value=sort[:40]))
    alert = (args.get("alert") or "").strip()
    alert_id = row_id(alert)
    if alert and alert_id is None:
        raise FilterError(_("The alert must be given by its number."))
    return RecordFilters(
        status=choice("status", RECORD_STATUSES), record_type=choice("record_type", RECORD_TYPES),
        error_code=choice("error_code", tuple(ERROR_CODES)), alert_id=alert_id, sort=sort,
    )


def row_id(value: str) -> int | None:
    """A database id written in ASCII digits, or None (also for numbers no database column holds)."""
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= MAX_ID_DIGITS:
        return int(value)
    return None


@dataclass(frozen=True)
class Cursor:
    """The edge of a page: the row's sort value and id, under the sort it was made for."""

    sort: str
    value: datetime | int
    id: int

    def encode(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        raw = json.dumps([self.sort, value, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, sort: str) -> "Cursor":
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            cursor_sort, value, edge_id = json.loads(raw)
            if cursor_sort != sort or not _storable_int(edge_id):
                raise ValueError(token)
            if sort.lstrip("-") == "approved":
                return cls(sort, datetime.fromisoformat(value), edge_id)
            if not _storable_int(value):
                raise ValueError(token)
            return cls(sort, value, edge_id)
        except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise FilterError(_("This page link is out of date; start again from the first page.")) from error

    @classmethod
    def of(cls, record: SyncRecord, sort: str) -> "Cursor":
        value = record.approved_at if sort.lstrip("-") == "approved" else record.amount_minor
        return cls(sort, value, record.id)


def _storable_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


@dataclass(frozen=True)
class RecordPage:
    records: list[SyncRecord]
    total: int
    """How many records match, counted up to COUNT_LIMIT + 1."""
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def total_capped(self) -> bool:
        """True when more than COUNT_LIMIT records match (the count stopped there)."""
        return self.total > COUNT_LIMIT


def records_query(organization: Organization, filters: RecordFilters) -> sa.Select[Any]:
    """The organization's records matching the filters; an alert's through its affected-record rows."""
    query = sa.select(SyncRecord).where(SyncRecord.organization_id == organization.id)
    if filters.alert_id is not None:
        query = query.join(AlertRecord, sa.and_(AlertRecord.record_id == SyncRecord.id,
                                                AlertRecord.alert_id == filters.alert_id))
    if filters.status:
        query = query.where(SyncRecord.status == filters.status)
    if filters.record_type:
        query = query.where(SyncRecord.record_type == filters.record_type)
    if filters.error_code:
        query = query.where(SyncRecord.last_error_code == filters.error_code)
    return query


def records_page(organization: Organization, filters: RecordFilters, after: str | None = None,
                 before: str | None = None, size: int = PAGE_SIZE) -> RecordPage:
    """One page of records: the first, the one after the `after` cursor, or the one before `before`."""
    base = records_query(organization, filters)
    counted = base.with_only_columns(SyncRecord.id).limit(COUNT_LIMIT + 1).subquery()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(counted)) or 0
    column = SORT_COLUMNS[filters.sort_key]
    key = sa.tuple_(column, SyncRecord.id)
    forward = before is None
    ascending = filters.descending != forward  # walking backwards reverses the order
    query = base
    if after or before:
        cursor = Cursor.decode(after or before or "", filters.sort)
        edge = sa.tuple_(sa.literal(cursor.value, column.type), sa.literal(cursor.id))
        query = query.where(key > edge if ascending else key < edge)
    order = (column.asc(), SyncRecord.id.asc()) if ascending else (column.desc(), SyncRecord.id.desc())
    rows = list(db.session.scalars(query.order_by(*order).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    if not forward:
        rows.reverse()
        if not more:  # back at the start: show a full first page
            return records_page(organization, filters, size=size)
    first, last = (rows[0], rows[-1]) if rows else (None, None)
    has_next = more if forward else True
    has_previous = bool(after) if forward else more
    return RecordPage(
        records=rows, total=total,
        next_cursor=Cursor.of(last, filters.sort).encode() if has_next and last else None,
        previous_cursor=Cursor.of(first, filters.sort).encode() if has_previous and first else None,
    )


# The alert view and the open-alerts panel.

@dataclass(frozen=True)
class AlertSummary:
    alert: Alert
    by_status: dict[str, int]
    at_stake: dict[str, int]
    """Minor units per currency of the affected records not yet synced (pending or failed)."""

    @property
    def affected(self) -> int:
        return sum(self.by_status.values())

    @property
    def failed(self) -> int:
        return self.by_status.get("failed", 0)


def alert_summaries(alerts: Sequence[Alert]) -> list[AlertSummary]:
    """Each alert with its affected records counted by status and its amount at stake: one query."""
    stored = [a for a in alerts if "by_status" in (a.details or {}) and "waiting_amounts" in (a.details or {})]
    if stored:  # figures kept by the engine at each evaluation: no aggregate over affected records per page view
        known = {a.id: AlertSummary(a, dict(a.details["by_status"]), dict(a.details["waiting_amounts"]))
                 for a in stored}
        rest = alert_summaries([a for a in alerts if a.id not in known])
        rest_by_id = {s.alert.id: s for s in rest}
        return [known.get(a.id) or rest_by_id[a.id] for a in alerts]
    ids = [a.id for a in alerts]
    by_status: dict[int, dict[str, int]] = {i: {} for i in ids}
    at_stake: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        rows = db.session.execute(
            sa.select(AlertRecord.alert_id, SyncRecord.status, SyncRecord.currency, sa.func.count(),
                      sa.func.sum(SyncRecord.amount_minor))
            .join(SyncRecord, SyncRecord.id == AlertRecord.record_id)
            .where(AlertRecord.alert_id.in_(ids))
            .group_by(AlertRecord.alert_id, SyncRecord.status, SyncRecord.currency)
        ).all()
        for alert_id, status, currency, count, amount in rows:
            by_status[alert_id][status] = by_status[alert_id].get(status, 0) + count
            if status in WAITING_STATUSES:
                at_stake[alert_id][currency] = at_stake[alert_id].get(currency, 0) + int(amount or 0)
    return [AlertSummary(a, by_status[a.id], dict(sorted(at_stake[a.id].items()))) for a in alerts]


def open_alerts(organization: Organization) -> list[AlertSummary]:
    alerts = db.session.scalars(
        sa.select(Alert).where(Alert.organization_id == organization.id, Alert.status == "open")
        .order_by(Alert.opened_at.desc(), Alert.id.desc())
    ).all()
    return alert_summaries(alerts)


# The connector panel.

@dataclass(frozen=True)
class ConnectorState:
    connector: Connector
    pending: int
    failed: int
    oldest_waiting_at: datetime | None
    """The approval time of the oldest record not yet synced (pending or failed)."""
    next_sync_at: datetime | None
    """When the scheduler syncs it next; None before its first batch, when disabled or not pushed by us."""
    sync_due: bool = False
    """True when the next sync's time has passed: the scheduler's next run takes it."""

    @property
    def scheduled(self) -> bool:
        return self.connector.enabled and self.connector.provider in PUSHED_PROVIDERS


@dataclass(frozen=True)
class ConnectorPanel:
    connectors: list[ConnectorState]
    errors_in_window: int
    error_threshold: int
    window_hours: int

    @property
    def above_threshold(self) -> bool:
        return self.errors_in_window > self.error_threshold


def connector_panel(organization: Organization, interval_seconds: int, now: datetime | None = None) -> ConnectorPanel:
    now = now or utcnow()
    connectors = db.session.scalars(
        sa.select(Connector).where(Connector.organization_id == organization.id).order_by(Connector.id)
    ).all()
    counts: dict[tuple[int, str], tuple[int, datetime | None]] = {
        (row[0], row[1]): (row[2], row[3]) for row in db.session.execute(
            # by connector: its (connector_id, status, approved_at) index covers the query
            sa.select(SyncRecord.connector_id, SyncRecord.status, sa.func.count(), sa.func.min(SyncRecord.approved_at))
            .where(SyncRecord.connector_id.in_([c.id for c in connectors] or [-1]),
                   SyncRecord.status.in_(WAITING_STATUSES))
            .group_by(SyncRecord.connector_id, SyncRecord.status)
        ).all()
    }
    states = []
    for c in connectors:
        pending, oldest_pending = counts.get((c.id, "pending"), (0, None))
        failed, oldest_failed = counts.get((c.id, "failed"), (0, None))
        oldest = min((t for t in (oldest_pending, oldest_failed) if t is not None), default=None)
        next_sync = None
        if c.enabled and c.provider in PUSHED_PROVIDERS and c.last_batch_at is not None:
            next_sync = c.last_batch_at + timedelta(seconds=interval_seconds)
        states.append(ConnectorState(c, pending, failed, oldest, next_sync, next_sync is not None and next_sync <= now))
    return ConnectorPanel(
        connectors=states,
        errors_in_window=errors_in_window(organization, now),
        error_threshold=organization.error_threshold,
        window_hours=organization.error_window_hours,
    )


def errors_in_window(organization: Organization, now: datetime) -> int:
    """Failed attempts in the organization's error window, from the hourly counters."""
    start = now - timedelta(hours=organization.error_window_hours)
    return int(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(HourlyAttemptCount.failures), 0))
        .where(HourlyAttemptCount.organization_id == organization.id, HourlyAttemptCount.hour > start)
    ) or 0)


# The attempts chart.

@dataclass(frozen=True)
class Bucket:
    start: datetime
    """The bucket's start in the organization's time zone."""
    successes: int
    failures: int


@dataclass(frozen=True)
class Series:
    """Attempts per bucket, oldest first, with a scale for drawing."""

    unit: str
    """"hour" or "day"."""
    buckets: list[Bucket]

    @property
    def failures(self) -> int:
        return sum(b.failures for b in self.buckets)

    @property
    def successes(self) -> int:
        return sum(b.successes for b in self.buckets)

    @property
    def scale(self) -> int:
        """A round axis maximum at or above the largest bucket value."""
        peak = max([b.successes for b in self.buckets] + [b.failures for b in self.buckets] + [1])
        magnitude = 1
        while True:
            for base in (1, 2, 5):
                if base * magnitude >= peak:
                    return base * magnitude
            magnitude *= 10


@dataclass(frozen=True)
class Chart:
    hourly: Series
    daily: Series


def attempts_chart(organization: Organization, now: datetime | None = None, hours: int = 24, days: int = 14) -> Chart:
    """Successful and failed attempts per hour over `hours` and per local day over `days`."""
    now = now or utcnow()
    zone = ZoneInfo(organization.timezone or "Europe/Oslo")
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    local_today = _to_local(now, zone).date()
    first_day = local_today - timedelta(days=days - 1)
    first_day_utc = datetime.combine(first_day, datetime.min.time(), zone).astimezone(timezone.utc).replace(tzinfo=None)
    start = min(first_day_utc, this_hour - timedelta(hours=hours - 1))
    rows = db.session.execute(
        sa.select(HourlyAttemptCount.hour, HourlyAttemptCount.successes, HourlyAttemptCount.failures)
        .where(HourlyAttemptCount.organization_id == organization.id, HourlyAttemptCount.hour >= start,
               HourlyAttemptCount.hour <= this_hour)
    ).all()
    per_hour = {hour: (successes, failures) for hour, successes, failures in rows}
    hourly = []
    for i in range(hours):
        hour = this_hour - timedelta(hours=hours - 1 - i)
        successes, failures = per_hour.get(hour, (0, 0))
        hourly.append(Bucket(_to_local(hour, zone), successes, failures))
    per_day: dict[date, list[int]] = {first_day + timedelta(days=i): [0, 0] for i in range(days)}
    for hour, (successes, failures) in per_hour.items():
        day = per_day.get(_to_local(hour, zone).date())
        if day is not None:
            day[0] += successes
            day[1] += failures
    daily = [Bucket(datetime.combine(d, datetime.min.time(), zone), s, f) for d, (s, f) in per_day.items()]
    return Chart(Series("hour", hourly), Series("day", daily))


def _to_local(value: datetime, zone: ZoneInfo) -> datetime:
    return value.replace(tzinfo=timezone.utc).astimezone(zone)


# A record's history: the sync log's attempts, alert events and administrator actions, newest first.

@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    kind: str
    """"attempt", "action" or "alert"."""
    outcome: str | None = None
    error_code: str | None = None
    message: str | None = None
    failure_streak: int | None = None
    user_name: str | None = None
    action: str | None = None
    alert_id: int | None = None
    alert_kind: str | None = None


def record_history(record: SyncRecord, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    """The newest `limit` entries of the record's sync log, interleaved by time."""
    triggered_by = so.aliased(User)
    attempts = db.session.execute(
        sa.select(SyncAttempt.attempted_at, SyncAttempt.outcome, SyncAttempt.error_code, SyncAttempt.error_message,
                  SyncAttempt.failure_streak, triggered_by.name)
        .outerjoin(triggered_by, triggered_by.id == SyncAttempt.triggered_by_id)
        .where(SyncAttempt.record_id == record.id)
        .order_by(SyncAttempt.attempted_at.desc(), SyncAttempt.id.desc()).limit(limit)
    ).all()
    actions = db.session.execute(
        sa.select(RecordAction.created_at, RecordAction.action, RecordAction.reason, User.name)
        .outerjoin(User, User.id == RecordAction.user_id)
        .where(RecordAction.record_id == record.id)
        .order_by(RecordAction.created_at.desc(), RecordAction.id.desc()).limit(limit)
    ).all()
    events = db.session.execute(
        sa.select(AlertEvent.at, AlertEvent.kind, AlertEvent.alert_id, AlertEvent.detail)
        .where(AlertEvent.record_id == record.id)
        .order_by(AlertEvent.at.desc(), AlertEvent.id.desc()).limit(limit)
    ).all()
    entries = [HistoryEntry(at=a[0], kind="attempt", outcome=a[1], error_code=a[2], message=a[3],
                            failure_streak=a[4], user_name=a[5]) for a in attempts]
    entries += [HistoryEntry(at=a[0], kind="action", action=a[1], message=a[2], user_name=a[3]) for a in actions]
    entries += [HistoryEntry(at=e[0], kind="alert", alert_kind=e[1], alert_id=e[2], message=e[3] or None)
                for e in events]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


# Progress of a manual retry until the sync job has pushed the records.

@dataclass(frozen=True)
class RetrySelection:
    """The records one retry named: a list of ids, or an alert's affected records."""

    record_ids: tuple[int, ...] = ()
    alert_id: int | None = None
    total: int = 0

    def args(self) -> dict[str, str | int]:
        values: dict[str, str | int] = {"total": self.total}
        if self.alert_id is not None:
            values["alert"] = self.alert_id
        else:
            values["ids"] = ",".join(str(i) for i in self.record_ids)
        return values


def parse_selection(args: MultiDict[str, str]) -> RetrySelection:
    """The retry a progress request follows: `ids` (comma-separated) or `alert`, and `total`."""
    total = row_id(args.get("total") or "0")
    alert = args.get("alert") or ""
    parts = [p for p in (args.get("ids") or "").split(",") if p.strip()]
    ids = tuple(i for i in map(row_id, parts) if i is not None)
    if total is None or len(ids) != len(parts) or (alert and row_id(alert) is None):
        raise FilterError(_("The retry to follow is not given correctly."))
    if len(ids) > MAX_SELECTION:
        raise FilterError(_("At most %(n)d records can be followed at once.", n=MAX_SELECTION))
    if alert:
        return RetrySelection(alert_id=row_id(alert), total=total)
    return RetrySelection(record_ids=ids, total=total)


@dataclass(frozen=True)
class RetryProgress:
    selection: RetrySelection
    waiting: int
    """Records still failed with the manual retry not yet carried out."""
    failed_again: int
    connector_disabled: bool
    """True when a record still waits on a disabled connector: it will not sync until enabled."""
    failed_refs: tuple[str, ...] = ()
    """Source references of records that failed again (the first few), once the retry is done."""

    @property
    def done(self) -> int:
        return max(self.selection.total - self.waiting, 0)

    @property
    def finished(self) -> bool:
        return self.waiting == 0

    @property
    def synced(self) -> int:
        return max(self.done - self.failed_again, 0)


def retry_progress(organization: Organization, selection: RetrySelection) -> RetryProgress:
    """Count the selection's records the sync job has not pushed yet, and those that failed again."""
    query = sa.select(SyncRecord.retry_requested_by_id.is_not(None), Connector.enabled, sa.func.count()).join(
        Connector, Connector.id == SyncRecord.connector_id
    ).where(SyncRecord.organization_id == organization.id, SyncRecord.status == "failed")
    if selection.alert_id is not None:
        query = query.join(AlertRecord, sa.and_(AlertRecord.record_id == SyncRecord.id,
                                                AlertRecord.alert_id == selection.alert_id))
    else:
        query = query.where(SyncRecord.id.in_(selection.record_ids or (-1,)))
    waiting = failed_again = 0
    disabled = False
    for requested, enabled, count in db.session.execute(
        query.group_by(SyncRecord.retry_requested_by_id.is_not(None), Connector.enabled)
    ).all():
        if requested:
            waiting += count
            disabled = disabled or not enabled
        else:
            failed_again += count
    failed_refs: tuple[str, ...] = ()
    if waiting == 0 and failed_again:
        failed_refs = tuple(db.session.scalars(
            query.with_only_columns(SyncRecord.source_ref)
            .where(SyncRecord.retry_requested_by_id.is_(None))
            .order_by(SyncRecord.source_ref).limit(FAILED_REFS_SHOWN)
        ))
    return RetryProgress(selection, waiting, min(failed_again, selection.total), disabled, failed_refs)


# Connector settings.

SETTINGS_FIELDS = ("scenario", "record_type", "share", "seed", "retry_after", "url")
SANDBOX_NUMBERS: dict[str, type] = {"share": float, "retry_after": float, "seed": int}
MAX_SECRET_LENGTH = 500
MAX_URL_LENGTH = 500


@dataclass
class SettingsForm:
    """One connector's settings form: shown values, problems, and the settings to save when there are none.

    The secret is write-only: it is kept here only to be saved, never shown.
    """

    connector: Connector
    enabled: bool
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    secret: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, connector: Connector) -> "SettingsForm":
        settings = connector.settings or {}
        values = {k: "" if settings.get(k) is None else str(settings[k]) for k in SETTINGS_FIELDS}
        values["scenario"] = values["scenario"] or "healthy"
        return cls(connector=connector, enabled=connector.enabled, values=values, settings=dict(settings))

    @classmethod
    def submitted(cls, connector: Connector, form: Mapping[str, str]) -> "SettingsForm":
        """Read and check a posted settings form; `errors` is empty when it can be saved."""
        values = {k: (form.get(k) or "").strip() for k in SETTINGS_FIELDS}
        result = cls(connector=connector, enabled=form.get("enabled") == "1", values=values)
        if connector.provider == "sandbox":
            result._read_sandbox()
        elif connector.provider == "http":
            result._read_http(form.get("secret") or "")
        else:
            result.settings = dict(connector.settings or {})
        return result

    def _read_sandbox(self) -> None:
        from dashboard.sync.connectors.sandbox import validate_settings

        settings: dict[str, Any] = {"scenario": self.values["scenario"]}
        if self.values["record_type"]:
            settings["record_type"] = self.values["record_type"]
        for name, kind in SANDBOX_NUMBERS.items():
            if self.values[name]:
                try:
                    settings[name] = kind(self.values[name])
                except ValueError:
                    self._error(name, _("Enter a number.") if kind is float else _("Enter a whole number."))
        if not self.errors:
            for problem in validate_settings(settings):
                self._error("scenario", problem)
        self.settings = settings

    def _read_http(self, secret: str) -> None:
        url = self.values["url"]
        parts = urlsplit(url)
        if not url:
            self._error("url", _("Enter the URL of the accounting system."))
        elif len(url) > MAX_URL_LENGTH or parts.scheme not in ("http", "https") or not parts.hostname:
            self._error("url", _("Enter a URL that starts with http:// or https://, at most %(n)d characters.",
                                 n=MAX_URL_LENGTH))
        if len(secret) > MAX_SECRET_LENGTH:
            self._error("secret", _("The secret can be at most %(n)d characters long.", n=MAX_SECRET_LENGTH))
        self.settings = {**(self.connector.settings or {}), "url": url}
        self.secret = secret or None

    def _error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def settings_forms(organization: Organization, submitted: SettingsForm | None = None) -> list[SettingsForm]:
    connectors = db.session.scalars(
        sa.select(Connector).where(Connector.organization_id == organization.id).order_by(Connector.id)
    ).all()
    return [submitted if submitted and submitted.connector.id == c.id else SettingsForm.of(c) for c in connectors]
