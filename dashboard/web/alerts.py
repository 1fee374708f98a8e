"""An organization's alerts page: open and resolved alerts, newest first, each with its timeline."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from dashboard.alerts.content import RULE_NAMES
from dashboard.models import Organization
from dashboard.web.access import org_view
from dashboard.web.alert_queries import ALERT_FILTERS, alert_page, read_cursor
from dashboard.web.fragments import wants_fragment
from dashboard.web.paging import BadCursor, Cursor

bp = Blueprint("alerts", __name__)


@bp.app_template_global()
def rule_name(rule: str) -> str:
    """The rule's name for people, translated."""
    return str(RULE_NAMES.get(rule, rule))


@bp.get("/orgs/<org>/alerts")
@org_view
def index(org: Organization):
    """The organization's alerts, newest first, a keyset page at a time; the list alone for an htmx fragment request."""
    status = request.args.get("status") or None
    if status is not None and status not in ALERT_FILTERS:
        abort(400)
    try:
        after = _cursor("after")
        before = _cursor("before")
    except BadCursor:
        abort(400)
    page = alert_page(org.id, status, after=after, before=before)
    template = "alerts/_list.html" if wants_fragment() else "alerts/index.html"
    return render_template(template, org=org, page=page, status=status)


def _cursor(name: str) -> Cursor | None:
    value = request.args.get(name)
    return read_cursor(value) if value else None
