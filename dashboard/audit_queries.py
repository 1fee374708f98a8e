"""Reading the audit log: its filters, keyset pages newest first, and the CSV export's rows in bounded chunks.

An organization's log is its entries (`organization_id` = its id); the platform's view is every entry, those
with no organization being the platform's own. Pages and chunks walk `(at, id)` downwards, which the indexes
`ix_audit_entries_org_at` and `ix_audit_entries_at` serve, so a page costs the same however long the log is.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from dashboard.extensions import db
from dashboard.formatting import YEARS, from_local
from dashboard.models import AuditEntry, Organization, User
from dashboard.vocabulary import AuditAction, values
from dashboard.web.paging import Cursor

PAGE_SIZE = 50
COUNT_LIMIT = 10_000
"""Counting stops here, so a page costs the same however many entries match."""
EXPORT_CHUNK = 500
"""Entries read per query while streaming the CSV: each chunk is its own short read."""
WHO_MAX_LENGTH = 254
CSV_COLUMNS = ("at", "actor_email", "organization", "action", "target_type", "target_id", "target_label",
               "record_id", "reason", "detail", "source_ip")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a cell starting with one of these as a formula: such cells get a leading `'`."""


@dataclass(frozen=True)
class AuditFilters:
    """What the log shows: one action, an actor whose address contains `who`, and a span of local days."""

    action: str | None = None
    who: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    """The last day shown, included."""

    def args(self, **extra: str | None) -> dict[str, str]:
        """The URL query of these filters (empty ones left out), plus `extra`."""
        query = {"action": self.action, "who": self.who,
                 "from": self.date_from.isoformat() if self.date_from else None,
                 "to": self.date_to.isoformat() if self.date_to else None, **extra}
        return {k: v for k, v in query.items() if v}


@dataclass(frozen=True)
class ParsedFilters:
    filters: AuditFilters
    errors: dict[str, str] = field(default_factory=dict)
    """A message per query field ("action", "who", "from", "to") whose value the log cannot use."""


def parse_filters(args: Mapping[str, str]) -> ParsedFilters:
    """The filters of a query string; a value that cannot be used is left out and named in `errors`."""
    errors: dict[str, str] = {}
    action = (args.get("action") or "").strip() or None
    if action is not None and action not in values(AuditAction):
        errors["action"] = _("Choose an action from the list.")
        action = None
    who = (args.get("who") or "").strip() or None
    if who is not None and len(who) > WHO_MAX_LENGTH:
        errors["who"] = _("Enter at most %(num)d characters.", num=WHO_MAX_LENGTH)
        who = None
    dates: dict[str, date | None] = {}
    for name in ("from", "to"):
        raw = (args.get(name) or "").strip()
        try:
            dates[name] = date.fromisoformat(raw) if raw else None
            if dates[name] is not None and dates[name].year not in YEARS:  # type: ignore[union-attr]
                raise ValueError("outside the years a person may type")
        except ValueError:
            errors[name] = _("Enter a date as year-month-day, such as 2026-03-31.")
            dates[name] = None
    if dates["from"] and dates["to"] and dates["from"] > dates["to"]:
        errors["to"] = _("The last day must be on or after the first day.")
        dates["to"] = None
    return ParsedFilters(AuditFilters(action, who, dates["from"], dates["to"]), errors)


def day_start(day: date, zone: str) -> datetime:
    """The moment (naive UTC, as stored) a local day begins in `zone`."""
    return from_local(datetime.combine(day, time.min), zone)


def _conditions(organization_id: int | None, filters: AuditFilters, zone: str) -> list[sa.ColumnElement[bool]]:
    """`organization_id` None: every organization's entries and the platform's."""
    where: list[sa.ColumnElement[bool]] = []
    if organization_id is not None:
        where.append(AuditEntry.organization_id == organization_id)
    if filters.action:
        where.append(AuditEntry.action == filters.action)
    if filters.who:
        where.append(sa.func.lower(AuditEntry.actor_email).contains(filters.who.lower(), autoescape=True))
    if filters.date_from:
        where.append(AuditEntry.at >= day_start(filters.date_from, zone))
    if filters.date_to:
        where.append(AuditEntry.at < day_start(filters.date_to + timedelta(days=1), zone))
    return where


def _older_than(cursor: Cursor) -> sa.ColumnElement[bool]:
    return sa.or_(AuditEntry.at < cursor.value, sa.and_(AuditEntry.at == cursor.value, AuditEntry.id < cursor.id))


def _newer_than(cursor: Cursor) -> sa.ColumnElement[bool]:
    return sa.or_(AuditEntry.at > cursor.value, sa.and_(AuditEntry.at == cursor.value, AuditEntry.id > cursor.id))


def read_cursor(value: str) -> Cursor:
    """A page edge from the URL (`<time>_<id>`).

    Raises:
        BadCursor: for anything this log did not write.
    """
    return Cursor.decode(value, sort=None, kind=datetime)


@dataclass(frozen=True)
class Row:
    """An entry as the page shows it: with its actor's current name and its organization's slug and name."""

    entry: AuditEntry
    actor_name: str | None
    organization_slug: str | None
    organization_name: str | None


@dataclass(frozen=True)
class AuditPage:
    rows: list[Row]
    total: int
    """How many entries match, counted up to COUNT_LIMIT + 1."""
    newer: Cursor | None
    """Where the page of newer entries ends (the link is `?before=`), None on the first page."""
    older: Cursor | None
    """Where the page of older entries starts (the link is `?after=`), None on the last page."""

    @property
    def total_capped(self) -> bool:
        return self.total > COUNT_LIMIT


def audit_page(organization_id: int | None, filters: AuditFilters, zone: str, *, after: Cursor | None = None,
               before: Cursor | None = None, size: int = PAGE_SIZE) -> AuditPage:
    """One page of the log, newest first: the first, the one after `after` (older) or before `before` (newer)."""
    where = _conditions(organization_id, filters, zone)
    counted = sa.select(AuditEntry.id).where(*where).limit(COUNT_LIMIT + 1).subquery()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(counted)) or 0
    query = (sa.select(AuditEntry, User.name, Organization.slug, Organization.name).where(*where)
             .outerjoin(User, User.id == AuditEntry.actor_id)
             .outerjoin(Organization, Organization.id == AuditEntry.organization_id))
    if before is not None:
        found = db.session.execute(query.where(_newer_than(before))
                                   .order_by(AuditEntry.at, AuditEntry.id).limit(size + 1)).all()
        if len(found) <= size:  # back at the newest: a full first page
            return audit_page(organization_id, filters, zone, size=size)
        rows = [Row(*r) for r in reversed(found[:size])]
        newer, older = _edge(rows[0]), _edge(rows[-1])
    else:
        if after is not None:
            query = query.where(_older_than(after))
        found = db.session.execute(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(size + 1)).all()
        rows = [Row(*r) for r in found[:size]]
        newer = _edge(rows[0]) if after is not None and rows else None
        older = _edge(rows[-1]) if len(found) > size else None
    return AuditPage(rows=rows, total=total, newer=newer, older=older)


def _edge(row: Row) -> Cursor:
    return Cursor(None, row.entry.at, row.entry.id)


EXPORT_COLUMNS = (AuditEntry.id, AuditEntry.at, AuditEntry.actor_email, Organization.slug, AuditEntry.action,
                  AuditEntry.target_type, AuditEntry.target_id, AuditEntry.target_label, AuditEntry.record_id,
                  AuditEntry.reason, AuditEntry.detail, AuditEntry.source_ip)


def export_rows(organization_id: int | None, filters: AuditFilters, zone: str) -> Iterator[list[str]]:
    """The matching entries as CSV cells, newest first, read `EXPORT_CHUNK` at a time.

    Each chunk is one query in its own short read transaction, ended before its rows are handed on, so
    streaming a long log to a slow client holds no transaction (nor a snapshot that would keep SQLite's WAL
    from being checkpointed). Entries written meanwhile are newer than the first chunk's edge: not exported.
    """
    chunk = EXPORT_CHUNK
    where = _conditions(organization_id, filters, zone)
    query = (sa.select(*EXPORT_COLUMNS).where(*where)
             .outerjoin(Organization, Organization.id == AuditEntry.organization_id)
             .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(chunk))
    edge: Cursor | None = None
    while True:
        found = db.session.execute(query.where(_older_than(edge)) if edge else query).all()
        db.session.rollback()  # only read: end the transaction before the rows go out
        for row in found:
            yield csv_cells(row[1:])
        if len(found) < chunk:
            return
        edge = Cursor(None, found[-1].at, found[-1].id)


def csv_cells(row: Any) -> list[str]:
    """One entry's CSV cells (`CSV_COLUMNS`), each safe to open in a spreadsheet."""
    at, actor_email, slug, action, target_type, target_id, target_label, record_id, reason, detail, ip = row
    cells = [at.isoformat(timespec="seconds") + "Z", actor_email, slug, action, target_type, target_id,
             target_label, record_id, reason, json.dumps(detail or {}, ensure_ascii=False, sort_keys=True), ip]
    return [escape_cell("" if cell is None else str(cell)) for cell in cells]


def escape_cell(value: str) -> str:
    """A cell a spreadsheet will not run: one starting like a formula (`=`, `+`, `-`, `@`, tab, carriage return)
    gets a leading `'` (CSV injection, OWASP)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value
