"""Organization pages: the landing page and each organization's home."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from dashboard.extensions import db
from dashboard.models import Connector, Organization, SyncRecord
from dashboard.web.access import org_view

bp = Blueprint("orgs", __name__)


@bp.get("/")
@login_required
def home():
    """Send each user to where their work is: one organization, or the list they may read."""
    if current_user.is_global_admin:
        return redirect(url_for("platform.index"))
    orgs = _readable_organizations()
    if len(orgs) == 1:
        return redirect(url_for("orgs.show", org=orgs[0].slug))
    return render_template("orgs/index.html", organizations=orgs)


@bp.get("/orgs/<org>")
@org_view
def show(org: Organization):
    """An organization's connectors and its records counted by status."""
    counts = dict(
        db.session.execute(
            sa.select(SyncRecord.status, sa.func.count())
            .where(SyncRecord.organization_id == org.id)
            .group_by(SyncRecord.status)
        ).all()
    )
    connectors = db.session.scalars(
        sa.select(Connector).where(Connector.organization_id == org.id).order_by(Connector.id)
    ).all()
    return render_template("orgs/show.html", org=org, counts=counts, connectors=connectors)


def _readable_organizations() -> list[Organization]:
    query = sa.select(Organization).order_by(Organization.name)
    if not current_user.is_global_admin:
        query = query.where(Organization.id.in_(current_user.organization_ids() or {-1}))
    return list(db.session.scalars(query))
