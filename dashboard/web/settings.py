"""Alert settings: an organization's thresholds and time zone, and the platform's incident settings."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from dashboard.extensions import db
from dashboard.models import Organization, PlatformSettings
from dashboard.web.access import global_admin_required, org_view
from dashboard.web.settings_forms import OrganizationSettingsForm, PlatformSettingsForm

bp = Blueprint("settings", __name__)


@bp.route("/orgs/<org>/settings", methods=["GET", "POST"])
@org_view
def organization(org: Organization):
    """Show and save the organization's alert thresholds and time zone; a bad value saves nothing."""
    form = OrganizationSettingsForm(obj=org)
    if form.validate_on_submit():
        org.consecutive_failure_threshold = form.consecutive_failure_threshold.data
        org.error_threshold = form.error_threshold.data
        org.error_window_hours = form.error_window_hours.data
        org.stale_after_hours = form.stale_after_hours.data
        org.timezone = form.timezone.data
        db.session.commit()
        flash(_("The alert settings are saved."), "info")
        return redirect(url_for("settings.organization", org=org.slug))
    status = 422 if request.method == "POST" else 200
    return render_template("settings/organization.html", org=org, form=form), status


@bp.route("/platform/settings", methods=["GET", "POST"])
@global_admin_required
def platform():
    """Show and save the platform incident settings; a bad value saves nothing."""
    settings = PlatformSettings.load()
    form = PlatformSettingsForm(obj=settings)
    if form.validate_on_submit():
        settings.incident_min_organizations = form.incident_min_organizations.data
        settings.grouping_wait_seconds = form.grouping_wait_seconds.data
        db.session.add(settings)
        db.session.commit()
        flash(_("The platform settings are saved."), "info")
        return redirect(url_for("settings.platform"))
    status = 422 if request.method == "POST" else 200
    return render_template("settings/platform.html", form=form), status
