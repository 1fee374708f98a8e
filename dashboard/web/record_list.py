"""The status screen's records table: filters and sort from the URL, and keyset pages of matching records."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from dashboard.extensions import db
from dashboard.models import AlertRecord, Organization, SyncRecord
from dashboard.models.sync_log import RECORD_STATUSES, RECORD_TYPES
from dashboard.sync.errors import ERROR_CODES
from dashboard.vocabulary import WAITING_STATUSES
from dashboard.web.paging import Cursor
from dashboard.web.query_args import FilterError, row_id

PAGE_SIZE = 50
COUNT_LIMIT = 10_000
"""Counting stops here, so a page costs the same however many records match."""
SORT_COLUMNS: dict[str, sa.ColumnElement[Any]] = {
    "approved": SyncRecord.approved_at,
    "amount": SyncRecord.amount_minor,
    "problem": sa.func.coalesce(SyncRecord.last_attempt_at, SyncRecord.approved_at),
}
"""`problem`: when the record last needed attention, its last attempt (a failure, for a failed record) or, never
attempted, its approval."""
SORTS = ("approved", "-approved", "amount", "-amount", "problem", "-problem")
DEFAULT_SORT = "approved"
"""Oldest approval first: the records waiting longest come first."""
ATTENTION = "attention"
"""The status filter for the records that need attention: failed or pending (not synced, not excluded)."""
ALL_STATUSES = "all"
"""The status filter's value for every record, where the default is another."""
ATTENTION_SORT = "-problem"
"""What needs attention, newest problem first."""


@dataclass(frozen=True)
class RecordFilters:
    """What the table shows: records of one status (or those needing attention), type, last error or alert, in
    one sort order.

    Without a status in the URL, the screen shows what needs attention, newest problem first; an alert's view
    shows all its records. `status` None is every status.
    """

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

    @property
    def default_status(self) -> str | None:
        return None if self.alert_id is not None else ATTENTION

    @property
    def default_sort(self) -> str:
        return ATTENTION_SORT if self.status == ATTENTION else DEFAULT_SORT

    @property
    def sort_description(self) -> str:
        """The order in words, for the table's caption."""
        return str({
            "approved": _("Sorted by approval time, oldest first."),
            "-approved": _("Sorted by approval time, newest first."),
            "amount": _("Sorted by amount, smallest first."),
            "-amount": _("Sorted by amount, largest first."),
            "problem": _("Sorted by the last problem, oldest first."),
            "-problem": _("Sorted by the last problem, newest first."),
        }[self.sort])

    def args(self, **extra: str | int | None) -> dict[str, str | int]:
        """The URL query of these filters (defaults left out), plus `extra`."""
        status = None if self.status == self.default_status else (self.status or ALL_STATUSES)
        values: dict[str, str | int | None] = {
            "status": status, "record_type": self.record_type, "error_code": self.error_code,
            "alert": self.alert_id, "sort": None if self.sort == self.default_sort else self.sort, **extra,
        }
        return {k: v for k, v in values.items() if v not in (None, "")}

    def toggled(self, key: str) -> str:
        """The sort a header button for `key` asks for: the other direction when sorted by it already."""
        if self.sort_key == key:
            return key if self.descending else f"-{key}"
        return "-amount" if key == "amount" else key


def parse_filters(args: MultiDict[str, str]) -> RecordFilters:
    """Filters from a query string; the last `sort` wins (a header button adds one to the form's).

    Raises:
        FilterError: for a value the screen does not know.
    """
    def choice(name: str, allowed: Sequence[str]) -> str | None:
        value = (args.get(name) or "").strip()
        if value and value not in allowed:
            raise FilterError(_("Unknown value for %(name)s: %(value)s.", name=name, value=value[:40]))
        return value or None

    alert = (args.get("alert") or "").strip()
    alert_id = row_id(alert)
    if alert and alert_id is None:
        raise FilterError(_("The alert must be given by its number."))
    if "status" not in args:
        status = RecordFilters(alert_id=alert_id).default_status
    else:  # the form's "all statuses" sends an empty value
        status = choice("status", (*RECORD_STATUSES, ATTENTION, ALL_STATUSES))
        status = None if status == ALL_STATUSES else status
    sorts = [s for s in args.getlist("sort") if s]
    sort = sorts[-1] if sorts else RecordFilters(status=status).default_sort
    if sort not in SORTS:
        raise FilterError(_("Unknown sort order: %(value)s.", value=sort[:40]))
    return RecordFilters(
        status=status, record_type=choice("record_type", RECORD_TYPES),
        error_code=choice("error_code", tuple(ERROR_CODES)), alert_id=alert_id, sort=sort,
    )


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
    if filters.status == ATTENTION:
        query = query.where(SyncRecord.status.in_(WAITING_STATUSES))
    elif filters.status:
        query = query.where(SyncRecord.status == filters.status)
    if filters.record_type:
        query = query.where(SyncRecord.record_type == filters.record_type)
    if filters.error_code:
        query = query.where(SyncRecord.last_error_code == filters.error_code)
    return query


def records_page(organization: Organization, filters: RecordFilters, after: str | None = None,
                 before: str | None = None, size: int = PAGE_SIZE) -> RecordPage:
    """One page of records: the first, the one after the `after` cursor, or the one before `before`.

    Raises:
        BadCursor: for a cursor this table did not write under the filters' sort.
    """
    base = records_query(organization, filters)
    counted = base.with_only_columns(SyncRecord.id).limit(COUNT_LIMIT + 1).subquery()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(counted)) or 0
    column = SORT_COLUMNS[filters.sort_key]
    key = sa.tuple_(column, SyncRecord.id)
    forward = before is None
    ascending = filters.descending != forward  # walking backwards reverses the order
    query = base
    if after or before:
        cursor = Cursor.decode(after or before or "", filters.sort, column.type.python_type)
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
        next_cursor=_edge(last, filters.sort).encode() if has_next and last else None,
        previous_cursor=_edge(first, filters.sort).encode() if has_previous and first else None,
    )


def _edge(record: SyncRecord, sort: str) -> Cursor:
    """The cursor of a page that ends (or starts) at `record`."""
    values = {"approved": record.approved_at, "amount": record.amount_minor,
              "problem": record.last_attempt_at or record.approved_at}
    return Cursor(sort, values[sort.lstrip("-")], record.id)
