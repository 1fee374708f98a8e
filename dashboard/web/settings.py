"""Settings: an organization's thresholds, time zone and API tokens, and the platform's incident settings."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from dashboard import tokens
from dashboard.extensions import db
from dashboard.models import ApiToken, Organization, PlatformSettings, of_organization
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
    return render_template("settings/organization.html", org=org, form=form,
                           api_tokens=tokens.list_tokens(org.id)), status


@bp.post("/orgs/<org>/settings/tokens/<int:token_id>/revoke")
@org_view
def revoke_token(org: Organization, token_id: int):
    """Revoke one of the organization's API tokens; revoking it again changes nothing."""
    token = of_organization(ApiToken, org.id, token_id) or abort(404)
    if tokens.revoke_token(token):
        db.session.commit()
        flash(_("The API token “%(name)s” is revoked: the API refuses it from now on.", name=token.name), "info")
    else:
        flash(_("The API token “%(name)s” was revoked already.", name=token.name), "info")
    return redirect(url_for("settings.organization", org=org.slug, _anchor="api-tokens"))


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
