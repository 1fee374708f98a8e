"""The audit log's pages and CSV exports: an organization's (its admins and global admins) and the platform's
(global admins: every entry, those with no organization being the platform's own).

Both are filtered by the URL's query (action, who, from and to days in the shown time zone) and paged newest
first by `(at, id)`; the list alone answers an htmx request. The CSV takes the same filters and is streamed in
bounded chunks (`dashboard.audit_queries.export_rows`).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, stream_with_context, url_for
from flask_babel import lazy_gettext as _l

from dashboard import audit_queries
from dashboard.formatting import DEFAULT_TIME_ZONE
from dashboard.models import Organization, utcnow
from dashboard.vocabulary import AuditAction
from dashboard.web.access import global_admin_required, org_view
from dashboard.web.fragments import wants_fragment
from dashboard.web.paging import BadCursor

bp = Blueprint("audit_log", __name__)

A = AuditAction
ACTION_LABELS = {
    A.RECORD_RETRY: _l("Record retried"), A.RECORD_EXCLUDE: _l("Record excluded"),
    A.RECORD_INCLUDE: _l("Record included again"), A.SETTINGS_CHANGED: _l("Alert settings changed"),
    A.PLATFORM_SETTINGS_CHANGED: _l("Platform settings changed"),
    A.ORGANIZATION_CREATED: _l("Organization created"), A.ORGANIZATION_CHANGED: _l("Organization changed"),
    A.ORGANIZATION_ARCHIVED: _l("Organization archived"), A.ORGANIZATION_RESTORED: _l("Organization restored"),
    A.CONNECTOR_ADDED: _l("Connector added"), A.CONNECTOR_CHANGED: _l("Connector changed"),
    A.CONNECTOR_ENABLED: _l("Connector enabled"), A.CONNECTOR_DISABLED: _l("Connector disabled"),
    A.CONNECTOR_REMOVED: _l("Connector removed"), A.TOKEN_CREATED: _l("API token created"),
    A.TOKEN_REVOKED: _l("API token revoked"), A.ALERT_ACKNOWLEDGED: _l("Alert acknowledged"),
    A.ALERT_SNOOZED: _l("Alert snoozed"), A.ALERT_UNSNOOZED: _l("Alert snooze ended"),
    A.WINDOW_CREATED: _l("Maintenance window created"), A.WINDOW_ENDED: _l("Maintenance window ended"),
    A.WEBHOOK_ADDED: _l("Webhook added"), A.WEBHOOK_CHANGED: _l("Webhook changed"),
    A.WEBHOOK_REMOVED: _l("Webhook removed"), A.INVITATION_SENT: _l("Invitation sent"),
    A.INVITATION_RESENT: _l("Invitation sent again"), A.INVITATION_REVOKED: _l("Invitation revoked"),
    A.INVITATION_ACCEPTED: _l("Invitation accepted"), A.ADMIN_REMOVED: _l("Administrator removed"),
    A.GLOBAL_ADMIN_GRANTED: _l("Made a global administrator"),
    A.GLOBAL_ADMIN_REVOKED: _l("No longer a global administrator"),
    A.PASSWORD_RESET_REQUESTED: _l("Password reset requested"), A.PASSWORD_RESET: _l("Password reset"),
    A.PASSWORD_CHANGED: _l("Password changed"), A.SIGN_IN_FAILED: _l("Sign-in failed"),
    A.SIGN_IN_LOCKED: _l("Sign-in locked (too many failures)"),
}
"""Every action in people's words: the filter's choices and the log's "what"."""


def action_label(action: str) -> str:
    label = ACTION_LABELS.get(action)  # type: ignore[call-overload]
    return str(label) if label is not None else action


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {"action_label": action_label, "count_limit": audit_queries.COUNT_LIMIT,
            "action_choices": sorted(((a.value, str(label)) for a, label in ACTION_LABELS.items()),
                                     key=lambda choice: choice[1].casefold())}


@bp.get("/orgs/<org>/audit")
@org_view
def organization(org: Organization) -> Any:
    """The organization's log: its admins' and the service's actions on it."""
    return _page(org, org.timezone or DEFAULT_TIME_ZONE, "audit_log.organization", {"org": org.slug})


@bp.get("/platform/audit")
@global_admin_required
def platform() -> Any:
    """Every entry, with its organization; those with none are the platform's own."""
    return _page(None, DEFAULT_TIME_ZONE, "audit_log.platform", {})


@bp.get("/orgs/<org>/audit.csv")
@org_view
def organization_csv(org: Organization) -> Response:
    return _csv(org.id, org.timezone or DEFAULT_TIME_ZONE, f"audit-{org.slug}")


@bp.get("/platform/audit.csv")
@global_admin_required
def platform_csv() -> Response:
    return _csv(None, DEFAULT_TIME_ZONE, "audit-platform")


def _page(org: Organization | None, zone: str, endpoint: str, view_args: dict[str, str]) -> Any:
    """The page, or the list alone for htmx; unusable filters are named on the form (400) and show nothing."""
    parsed = audit_queries.parse_filters(request.args)
    try:
        after, before = (audit_queries.read_cursor(request.args[name]) if request.args.get(name) else None
                         for name in ("after", "before"))
    except BadCursor as error:
        abort(400, str(error))
    page = None if parsed.errors else audit_queries.audit_page(
        org.id if org else None, parsed.filters, zone, after=after, before=before)
    def url(**args: str | None) -> str:
        return url_for(endpoint, **view_args, **parsed.filters.args(**args))

    context = {"org": org, "zone": zone, "filters": parsed.filters, "errors": parsed.errors, "page": page,
               "url": url, "page_url": url_for(endpoint, **view_args),
               "csv_url": url_for(f"{endpoint}_csv", **view_args, **parsed.filters.args())}
    if not wants_fragment():
        return render_template("audit/log.html", **context), 400 if parsed.errors else 200
    if parsed.errors:  # the problems are named on the form: load the whole page
        return Response(status=204, headers={"HX-Redirect": request.full_path})
    # The address bar shows the filters and page without the form's empty fields: links, reload and back work.
    shown = url(after=request.args.get("after"), before=request.args.get("before"))
    return render_template("audit/_entries.html", **context), {"HX-Push-Url": shown}


def _csv(organization_id: int | None, zone: str, name: str) -> Response:
    parsed = audit_queries.parse_filters(request.args)
    if parsed.errors:
        abort(400, " ".join(parsed.errors.values()))
    rows = audit_queries.export_rows(organization_id, parsed.filters, zone)
    filename = f"{name}-{utcnow():%Y-%m-%d}.csv"
    return Response(stream_with_context(_lines(rows)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


def _lines(rows: Iterator[list[str]]) -> Iterator[str]:
    """The header, then the rows, as CSV text; a byte-order mark first so spreadsheets read UTF-8 (æ, ø, å)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(audit_queries.CSV_COLUMNS)
    yield "\ufeff" + _take(buffer)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() > 16_384:
            yield _take(buffer)
    yield _take(buffer)


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
