"""Reading an organization's alerts for the alerts page: one keyset page, and the timelines of its alerts.

The list has one order, newest first (opening time, then id), so its cursors name no sort.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from dashboard.alerts import rules
from dashboard.extensions import db
from dashboard.models import Alert, AlertEvent, User
from dashboard.sync.errors import ErrorCode
from dashboard.sync.errors import describe as describe_error
from dashboard.vocabulary import AlertEventKind, AlertStatus, values
from dashboard.web.paging import Cursor

PAGE_SIZE = 50
ALERT_FILTERS = values(AlertStatus)


@dataclass(frozen=True)
class TimelineEntry:
    """One step of an alert's history; records joining one after another, with nothing else between, are one
    entry from `at` to `until`."""

    at: datetime
    kind: str
    count: int
    detail: str
    user_name: str | None
    until: datetime | None = None
    """The last join of a run of joins; None for a single step."""


@dataclass(frozen=True)
class AlertItem:
    alert: Alert
    error: ErrorCode | None
    timeline: list[TimelineEntry]


@dataclass(frozen=True)
class AlertPage:
    items: list[AlertItem]
    newer: Cursor | None
    """Where the page of newer alerts ends (the link is `?before=`), or None on the first page."""
    older: Cursor | None
    """Where the page of older alerts starts (the link is `?after=`), or None on the last page."""


def alert_page(organization_id: int, status: str | None = None, *, after: Cursor | None = None,
               before: Cursor | None = None) -> AlertPage:
    """The organization's alerts, newest first, PAGE_SIZE at a time, after or before a cursor (see `read_cursor`)."""
    query = (sa.select(Alert).where(Alert.organization_id == organization_id)
             .options(so.selectinload(Alert.acknowledged_by)))  # each alert names who acknowledged it
    if status is not None:
        query = query.where(Alert.status == status)
    if before is not None:
        rows = list(db.session.scalars(
            query.where(_later_than(before)).order_by(Alert.opened_at, Alert.id).limit(PAGE_SIZE + 1)
        ))
        more_newer = len(rows) > PAGE_SIZE
        alerts = list(reversed(rows[:PAGE_SIZE]))
        newer = _edge(alerts[0]) if more_newer else None
        older = _edge(alerts[-1]) if alerts else None
    else:
        if after is not None:
            query = query.where(_earlier_than(after))
        rows = list(db.session.scalars(
            query.order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(PAGE_SIZE + 1)
        ))
        alerts = rows[:PAGE_SIZE]
        newer = _edge(alerts[0]) if after is not None and alerts else None
        older = _edge(alerts[-1]) if len(rows) > PAGE_SIZE else None
    timelines = _timelines([a.id for a in alerts])
    items = [AlertItem(alert=a, error=_error_of(a), timeline=timelines.get(a.id, [])) for a in alerts]
    return AlertPage(items=items, newer=newer, older=older)


def read_cursor(value: str) -> Cursor:
    """A cursor from this page's URL (`<opening time>_<id>`).

    Raises:
        BadCursor: for anything this page did not write.
    """
    return Cursor.decode(value, sort=None, kind=datetime)


def _edge(alert: Alert) -> Cursor:
    """The cursor of a page that ends (or starts) at `alert`."""
    return Cursor(None, alert.opened_at, alert.id)


def _earlier_than(cursor: Cursor) -> sa.ColumnElement[bool]:
    return sa.or_(Alert.opened_at < cursor.value,
                  sa.and_(Alert.opened_at == cursor.value, Alert.id < cursor.id))


def _later_than(cursor: Cursor) -> sa.ColumnElement[bool]:
    return sa.or_(Alert.opened_at > cursor.value,
                  sa.and_(Alert.opened_at == cursor.value, Alert.id > cursor.id))


def _error_of(alert: Alert) -> ErrorCode | None:
    """The error a records-keep-failing alert is about; other rules span several errors or none."""
    return describe_error(alert.error_code) if alert.rule == rules.CONSECUTIVE else None


def _timelines(alert_ids: list[int]) -> dict[int, list[TimelineEntry]]:
    """Each alert's events, oldest first, with the records that joined one after another counted as one entry.

    Joins are counted apart from the other events: an alert may have thousands of them, and grouping only
    them is the cheaper read.
    """
    if not alert_ids:
        return {}
    in_page = AlertEvent.alert_id.in_(alert_ids)
    joins = db.session.execute(
        sa.select(AlertEvent.alert_id, AlertEvent.at, sa.func.min(AlertEvent.id), sa.func.count())
        .where(in_page, AlertEvent.kind == AlertEventKind.JOINED).group_by(AlertEvent.alert_id, AlertEvent.at)
    ).all()
    others = db.session.execute(
        sa.select(AlertEvent.alert_id, AlertEvent.at, AlertEvent.id, AlertEvent.kind, AlertEvent.detail, User.name)
        .outerjoin(User, User.id == AlertEvent.user_id)
        .where(in_page, AlertEvent.kind != AlertEventKind.JOINED)
    ).all()
    steps = [(alert_id, at, first_id, TimelineEntry(at=at, kind=AlertEventKind.JOINED, count=count, detail="", user_name=None))
             for alert_id, at, first_id, count in joins]
    steps += [(alert_id, at, event_id, TimelineEntry(at=at, kind=kind, count=1, detail=detail, user_name=user_name))
              for alert_id, at, event_id, kind, detail, user_name in others]
    timelines: dict[int, list[TimelineEntry]] = {}
    for alert_id, _at, _id, entry in sorted(steps, key=lambda step: step[:3]):
        timeline = timelines.setdefault(alert_id, [])
        previous = timeline[-1] if timeline else None
        if previous is not None and previous.kind == entry.kind == AlertEventKind.JOINED:
            timeline[-1] = replace(previous, count=previous.count + entry.count, until=entry.at)
        else:
            timeline.append(entry)
    return timelines
