"""Factories and page readers for the status screen's tests."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient

from dashboard.extensions import db
from dashboard.models import Alert, AlertRecord, Connector, HourlyAttemptCount, Organization, SyncRecord, utcnow
from dashboard.sync.log import Outcome, record_batch
from tests import factories

HTMX = {"HX-Request": "true"}


def records(conn: Connector, n: int, start: datetime | None = None, **fields: Any) -> list[SyncRecord]:
    """`n` records approved a minute apart, oldest first, with amounts that vary (and repeat)."""
    start = start or utcnow() - timedelta(days=3)
    return [
        factories.record(conn, approved_at=start + timedelta(minutes=i),
                         **{"amount_minor": (i * 7919) % 50 * 1000, **fields})
        for i in range(n)
    ]


def failed(conn: Connector, error_code: str = "account_mapping_missing", streak: int = 3, **fields: Any) -> SyncRecord:
    return factories.record(conn, status="failed", consecutive_failures=streak, auto_attempts=streak,
                            last_error_code=error_code, last_error_message=f"{error_code} from the ledger", **fields)


def alert(org: Organization, affected: Iterable[SyncRecord], rule: str = "consecutive_failures",
          error_code: str | None = "account_mapping_missing", record_type: str | None = "expense_claim",
          resolved_at: datetime | None = None) -> Alert:
    affected = list(affected)
    a = Alert(organization_id=org.id, rule=rule, fingerprint=f"{org.id}:{rule}:{record_type}:{error_code}:{utcnow()}",
              status="resolved" if resolved_at else "open", record_type=record_type, error_code=error_code,
              title=f"{len(affected)} records keep failing", affected_count=len(affected),
              opened_at=utcnow() - timedelta(hours=2), resolved_at=resolved_at)
    db.session.add(a)
    db.session.flush()
    db.session.add_all(AlertRecord(alert_id=a.id, record_id=r.id) for r in affected)
    db.session.flush()
    return a


def hourly(org: Organization, hour: datetime, successes: int, failures: int) -> None:
    db.session.add(HourlyAttemptCount(organization_id=org.id, hour=hour.replace(minute=0, second=0, microsecond=0),
                                      successes=successes, failures=failures))
    db.session.flush()


def push(conn: Connector, outcomes: dict[int, str | None], at: datetime | None = None) -> None:
    """Log one batch through the real sync-log writer: record id -> error code, or None for a success."""
    at = at or utcnow()
    record_batch(conn, [
        Outcome(record_id=rid, attempted_at=at, ok=code is None, external_id="X-1" if code is None else None,
                error_code=code, error_message=None if code is None else f"{code} from the ledger",
                triggered_by_id=db.session.get(SyncRecord, rid).retry_requested_by_id)
        for rid, code in outcomes.items()
    ], source="orchestrator", started_at=at, finished_at=at, max_auto_attempts=5)
    db.session.commit()


# Reading pages.

def row_ids(html: str) -> list[int]:
    """The record ids of the records table's rows, in order."""
    return [int(i) for i in re.findall(r'<tr id="record-(\d+)"', html)]


def link(html: str, element_id: str) -> str | None:
    """The href of the element with this id, or None."""
    match = re.search(rf'<a href="([^"]+)"[^>]*\bid="{element_id}"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def csrf_token(client: FlaskClient, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def walk(client: FlaskClient, url: str, direction: str = "next",
         between: Callable[[], None] | None = None) -> list[list[int]]:
    """Follow the pagination links from `url`; the ids of each page. `between()` runs before each next page."""
    pages = []
    seen_urls = set()
    while url:
        assert url not in seen_urls, "pagination went round in a circle"
        seen_urls.add(url)
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        html = response.get_data(as_text=True)
        pages.append(row_ids(html))
        url = link(html, f"page-{direction}")
        if url and between is not None:
            between()
    return pages
