"""Settings: an organization's maintenance windows, listed, created and ended by its administrators (each
creation and ending in the organization's audit log, with the change)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from dashboard import audit
from dashboard.alerts import followup, maintenance, writer
from dashboard.alerts.engine import recount_platform
from dashboard.database import write_transaction
from dashboard.extensions import db
from dashboard.formatting import DEFAULT_TIME_ZONE
from dashboard.models import MaintenanceWindow, Organization, User, of_organization, utcnow
from dashboard.vocabulary import AuditAction
from dashboard.web.access import org_view
from dashboard.web.maintenance_forms import MaintenanceWindowForm

bp = Blueprint("maintenance", __name__)

RECENT = timedelta(days=90)
"""How far back the page lists ended windows."""


@bp.route("/orgs/<org>/settings/maintenance", methods=["GET", "POST"])
@org_view
def organization(org: Organization):
    """List the organization's windows and create one; a refused window saves nothing."""
    now = utcnow()
    form = MaintenanceWindowForm(organization=org, existing=_not_ended(org, now), now=now)
    if request.method == "GET":
        zone = ZoneInfo(org.timezone or DEFAULT_TIME_ZONE)
        form.starts_at.data = now.replace(tzinfo=timezone.utc).astimezone(zone).replace(tzinfo=None, second=0,
                                                                                        microsecond=0)
    if form.validate_on_submit():
        span = form.span()
        with write_transaction():
            window = MaintenanceWindow(organization_id=org.id, starts_at=span.starts_at, ends_at=span.ends_at,
                                       error_codes=sorted(span.error_codes), record_types=sorted(span.record_types),
                                       reason=(form.reason.data or "").strip(), created_by_id=current_user.id,
                                       created_at=now)
            db.session.add(window)
            db.session.flush()
            audit.record(AuditAction.WINDOW_CREATED, organization_id=org.id, target=_target(window),
                         reason=window.reason or None, at=now,
                         detail={"starts_at": _utc(window.starts_at), "ends_at": _utc(window.ends_at),
                                 "error_codes": window.error_codes, "record_types": window.record_types})
        flash(_("The maintenance window is saved: alerts it matches notify nobody while it is open."), "info")
        return redirect(url_for("maintenance.organization", org=org.slug))
    status = 422 if request.method == "POST" else 200
    return _page(org, form, now), status


@bp.post("/orgs/<org>/settings/maintenance/<int:window_id>/end")
@org_view
def end(org: Organization, window_id: int):
    """End an open window now: the alerts it held back that are still open remind the admins at once. A window
    that has not started is cancelled (removed: it held nothing back); one that has ended is left as it is."""
    now = utcnow()
    with write_transaction():
        writer.lock_organization(org.id)
        window = of_organization(MaintenanceWindow, org.id, window_id) or abort(404)
        db.session.refresh(window)
        if window.ends_at <= now:
            message = _("That maintenance window had ended already.")
        elif window.starts_at > now:
            _record_end(org, window, now, cancelled=True)
            db.session.delete(window)
            message = _("The upcoming maintenance window is cancelled.")
        else:
            _record_end(org, window, now, cancelled=False)
            window.ends_at = now
            window.ended_by_id = current_user.id
            followup.close_window(window, now, recount_platform)
            message = _("The maintenance window is ended: the administrators are reminded of the alerts it held "
                        "back that are still open.")
    flash(message, "info")
    return redirect(url_for("maintenance.organization", org=org.slug))


def _target(window: MaintenanceWindow) -> audit.Target:
    return ("maintenance_window", window.id, window.reason or _("Window %(id)d", id=window.id))


def _utc(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def _record_end(org: Organization, window: MaintenanceWindow, now: datetime, cancelled: bool) -> None:
    """An upcoming window cancelled (its row removed: the entry keeps what it was) or an open one ended early."""
    audit.record(AuditAction.WINDOW_ENDED, organization_id=org.id, target=_target(window), at=now,
                 detail={"cancelled": cancelled, "starts_at": _utc(window.starts_at),
                         "ends_at": [_utc(window.ends_at), _utc(now)] if not cancelled else _utc(window.ends_at)})


def _not_ended(org: Organization, now: datetime) -> list[MaintenanceWindow]:
    return list(db.session.scalars(
        sa.select(MaintenanceWindow).where(MaintenanceWindow.organization_id == org.id,
                                           MaintenanceWindow.ends_at > now)
        .order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
    ))


def _page(org: Organization, form: MaintenanceWindowForm, now: datetime) -> str:
    current = form.existing
    past = list(db.session.scalars(
        sa.select(MaintenanceWindow).where(MaintenanceWindow.organization_id == org.id,
                                           MaintenanceWindow.ends_at <= now, MaintenanceWindow.ends_at > now - RECENT)
        .order_by(MaintenanceWindow.ends_at.desc(), MaintenanceWindow.id.desc()).limit(50)
    ))
    people = {w.created_by_id for w in current + past} | {w.ended_by_id for w in current + past}
    names = dict(db.session.execute(sa.select(User.id, User.name).where(User.id.in_(people - {None}))).all())
    return render_template("maintenance/organization.html", org=org, form=form, current=current, past=past,
                           names=names, now=now, is_open=lambda w: maintenance.is_open(maintenance.Span.of(w), now))
