"""A manual retry's selection (record ids or an alert's records) and its progress until the sync job has pushed them."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from dashboard.extensions import db
from dashboard.models import AlertRecord, Connector, Organization, SyncRecord
from dashboard.vocabulary import RecordStatus
from dashboard.web.query_args import FilterError, row_id

MAX_SELECTION = 500
"""The most records one bulk retry may name (a page holds 50)."""
FAILED_REFS_SHOWN = 10


@dataclass(frozen=True)
class RetrySelection:
    """The records one retry named: a list of ids, or an alert's affected records."""

    record_ids: tuple[int, ...] = ()
    alert_id: int | None = None
    total: int = 0

    def args(self) -> dict[str, str | int]:
        """The URL query that `parse_selection` reads back."""
        values: dict[str, str | int] = {"total": self.total}
        if self.alert_id is not None:
            values["alert"] = self.alert_id
        else:
            values["ids"] = ",".join(str(i) for i in self.record_ids)
        return values


def parse_selection(args: MultiDict[str, str]) -> RetrySelection:
    """The retry a progress request follows: `ids` (comma-separated) or `alert`, and `total`.

    Raises:
        FilterError: when they are missing, malformed, or name more than MAX_SELECTION records.
    """
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
    ).where(SyncRecord.organization_id == organization.id, SyncRecord.status == RecordStatus.FAILED)
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
