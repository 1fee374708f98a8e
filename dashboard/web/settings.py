"""Settings: an organization's thresholds, time zone and API tokens, and the platform's incident settings."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from dashboard import audit, tokens
from dashboard.extensions import db
from dashboard.models import ApiToken, Organization, PlatformSettings, of_organization
from dashboard.vocabulary import AuditAction
from dashboard.web.access import global_admin_required, org_view
from dashboard.web.fragments import wants_fragment
from dashboard.web.settings_forms import OrganizationSettingsForm, PlatformSettingsForm
from dashboard.web.settings_preview import PreviewJob, PreviewState, read_preview, start_preview

bp = Blueprint("settings", __name__)

ORGANIZATION_FIELDS = ("consecutive_failure_threshold", "error_threshold", "error_window_hours", "stale_after_hours",
                       "error_rearm_level", "daily_notification_budget", "timezone")
"""The alert settings the page saves, under the organization's column names (the audit log's `detail` too)."""
PLATFORM_FIELDS = ("incident_min_organizations", "grouping_wait_seconds", "escalation_hours")


@bp.route("/orgs/<org>/settings", methods=["GET", "POST"])
@org_view
def organization(org: Organization):
    """Show and save the organization's alert thresholds and time zone; a bad value saves nothing."""
    form = OrganizationSettingsForm(obj=org)
    if form.validate_on_submit():
        before = _values(org, ORGANIZATION_FIELDS)
        for name in ORGANIZATION_FIELDS:
            setattr(org, name, form[name].data)
        changed = audit.changes(before, _values(org, ORGANIZATION_FIELDS))
        if changed:
            audit.record(AuditAction.SETTINGS_CHANGED, organization_id=org.id,
                         target=("organization", org.id, org.name), detail=changed)
        db.session.commit()
        flash(_("The alert settings are saved."), "info")
        return redirect(url_for("settings.organization", org=org.slug))
    status = 422 if request.method == "POST" else 200
    return _page(org, form), status


@bp.post("/orgs/<org>/settings/preview")
@org_view
def preview(org: Organization) -> Response | tuple[str, int] | str:
    """Start a preview of the submitted values over the last 30 days, saving nothing; bad values: the form's
    errors and no preview."""
    form = OrganizationSettingsForm(obj=org)
    if not form.validate_on_submit():
        if not wants_fragment():
            return _page(org, form), 422
        response = make_response(render_template("settings/_editor.html", org=org, form=form), 422)
        response.headers["HX-Retarget"] = "#settings-editor"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    job = start_preview(org, form.alert_settings())
    if not wants_fragment():
        return _page(org, form, job)
    # A form that showed errors is shown again without them, the focus kept on the preview button.
    editor = render_template("settings/_editor.html", org=org, form=form, oob=True, focus_preview=True) \
        if request.form.get("shown_errors") else ""
    return _preview_fragment(org, job) + editor


@bp.get("/orgs/<org>/settings/preview/<key>")
@org_view
def preview_result(org: Organization, key: str) -> Response | tuple[str, int] | str:
    """The preview's state: computing (the page asks again), its figures, or why there are none.

    A key of another organization's preview is unknown here (404)."""
    job = read_preview(org, key)
    status = 404 if job.state == PreviewState.GONE else 200
    if not wants_fragment():
        return _page(org, OrganizationSettingsForm(obj=org), job), status
    return _preview_fragment(org, job), status


def _preview_fragment(org: Organization, job: PreviewJob) -> str:
    """The preview's part of the page; its status line is announced only when it changes."""
    return render_template("settings/_preview.html", org=org, job=job, fragment=True,
                           announce=request.method == "POST" or job.state != PreviewState.COMPUTING)


def _page(org: Organization, form: OrganizationSettingsForm, job: PreviewJob | None = None) -> str:
    return render_template("settings/organization.html", org=org, form=form, job=job,
                           api_tokens=tokens.list_tokens(org.id))


@bp.post("/orgs/<org>/settings/tokens/<int:token_id>/revoke")
@org_view
def revoke_token(org: Organization, token_id: int):
    """Revoke one of the organization's API tokens; revoking it again changes nothing."""
    token = of_organization(ApiToken, org.id, token_id) or abort(404)
    if tokens.revoke_token(token):  # records the revocation in the audit log
        db.session.commit()
        flash(_("The API token “%(name)s” is revoked: the API refuses it from now on.", name=token.name), "info")
    else:
        flash(_("The API token “%(name)s” was revoked already.", name=token.name), "info")
    return redirect(url_for("settings.organization", org=org.slug, _anchor="api-tokens"))


@bp.route("/platform/settings", methods=["GET", "POST"])
@global_admin_required
def platform():
    """Show and save the platform incident and escalation settings; a bad value saves nothing."""
    settings = PlatformSettings.load()
    form = PlatformSettingsForm(obj=settings)
    if form.validate_on_submit():
        before = _values(settings, PLATFORM_FIELDS)
        for name in PLATFORM_FIELDS:
            setattr(settings, name, form[name].data)
        changed = audit.changes(before, _values(settings, PLATFORM_FIELDS))
        if changed:
            audit.record(AuditAction.PLATFORM_SETTINGS_CHANGED, organization_id=None, detail=changed)
        db.session.add(settings)
        db.session.commit()
        flash(_("The platform settings are saved."), "info")
        return redirect(url_for("settings.platform"))
    status = 422 if request.method == "POST" else 200
    return render_template("settings/platform.html", form=form), status


def _values(holder: object, names: tuple[str, ...]) -> dict[str, object]:
    return {name: getattr(holder, name) for name in names}
