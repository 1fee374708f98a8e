"""Organization pages: the landing page and each organization's home."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dashboard.alerts.content import remedy
from dashboard.extensions import db
from dashboard.models import Organization, SyncRecord
from dashboard.sync.volunteers import VolunteerCount
from dashboard.web.access import org_view
from dashboard.web.alert_summaries import (
    AlertSummary,
    open_alert_totals,
    open_alerts,
    volunteers_by_alert,
    worst_first,
)
from dashboard.web.connector_status import connector_panel

bp = Blueprint("orgs", __name__)


@bp.get("/")
@login_required
def home():
    """Send each user to where their work is: one organization, or the list they may read (archived
    organizations hidden unless `?archived=1`)."""
    if current_user.is_global_admin:
        return redirect(url_for("platform.index"))
    readable = _readable_organizations()
    active = [o for o in readable if o.archived_at is None]
    if len(active) == 1 and not request.args.get("archived"):
        return redirect(url_for("orgs.show", org=active[0].slug))
    # Archived organizations are listed when asked for, or when no other is left to show.
    shown = readable if request.args.get("archived") or not active else active
    return render_template("orgs/index.html", organizations=shown, archived_count=len(readable) - len(active))


@dataclass(frozen=True)
class Attention:
    """An open alert as the landing page leads with it: its figures, the volunteers waiting, what to do."""

    summary: AlertSummary
    volunteers: VolunteerCount
    remedy: str


@bp.get("/orgs/<org>")
@org_view
def show(org: Organization):
    """What needs attention first (open alerts, worst first, and their totals), then the connectors' health,
    then the records counted by status; "all is well" when nothing is open."""
    summaries = worst_first(open_alerts(org))
    volunteers = volunteers_by_alert([s.alert for s in summaries])
    attention = [Attention(s, volunteers[s.alert.id], remedy(s.alert)) for s in summaries]
    totals = open_alert_totals(org, len(summaries)) if summaries else None
    counts = dict(
        db.session.execute(
            sa.select(SyncRecord.status, sa.func.count())
            .where(SyncRecord.organization_id == org.id)
            .group_by(SyncRecord.status)
        ).all()
    )
    panel = connector_panel(org, current_app.config["SYNC_INTERVAL_SECONDS"])
    last_success = max((s.connector.last_success_at for s in panel.connectors
                        if s.connector.last_success_at is not None), default=None)
    return render_template("orgs/show.html", org=org, counts=counts, panel=panel, attention=attention,
                           totals=totals, last_success=last_success)


def _readable_organizations() -> list[Organization]:
    query = sa.select(Organization).order_by(Organization.name)
    if not current_user.is_global_admin:
        query = query.where(Organization.id.in_(current_user.organization_ids() or {-1}))
    return list(db.session.scalars(query))
