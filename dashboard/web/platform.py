"""The global administrators' pages."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template

from dashboard.extensions import db
from dashboard.models import Organization, SyncRecord
from dashboard.web.access import global_admin_required

bp = Blueprint("platform", __name__)


@bp.get("/platform")
@global_admin_required
def index():
    """Every organization with its records counted by status."""
    organizations = db.session.scalars(sa.select(Organization).order_by(Organization.name)).all()
    rows = db.session.execute(
        sa.select(SyncRecord.organization_id, SyncRecord.status, sa.func.count()).group_by(
            SyncRecord.organization_id, SyncRecord.status
        )
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for org_id, status, n in rows:
        counts.setdefault(org_id, {})[status] = n
    return render_template("platform/index.html", organizations=organizations, counts=counts)
