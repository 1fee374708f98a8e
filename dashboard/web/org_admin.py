"""Organizations, for global admins: list, create, edit, archive (after a confirmation) and restore.

Every page answers 403 to anyone else before it looks the organization up, so an org admin learns nothing
of other organizations. The actions themselves live in `dashboard.organizations` (shared with `flask orgs`).
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from dashboard import organizations
from dashboard.extensions import db
from dashboard.models import Alert, Connector, Organization
from dashboard.vocabulary import AlertStatus
from dashboard.web.access import global_admin_required
from dashboard.web.org_admin_forms import LANGUAGE_NAMES, CreateOrganizationForm, EditOrganizationForm

bp = Blueprint("org_admin", __name__)


@bp.get("/platform/organizations/manage")
@global_admin_required
def index():
    """The organizations by name with their settings and counts; archived ones only with `?archived=1`."""
    show_archived = request.args.get("archived") == "1"
    return render_template("org_admin/index.html", listed=organizations.listing(archived=show_archived),
                           show_archived=show_archived, languages=LANGUAGE_NAMES)


@bp.route("/platform/organizations/new", methods=["GET", "POST"])
@global_admin_required
def create():
    """Create an organization; a slug left empty is made from the name. Refused input saves nothing."""
    form = CreateOrganizationForm()
    if form.validate_on_submit():
        typed = (form.slug.data or "").strip()
        slug = typed or organizations.suggest_slug(form.name.data or "")
        try:
            organization = organizations.create(slug=slug, name=form.name.data or "",
                                                 timezone=form.timezone.data, language=form.language.data)
        except organizations.Refused as refused:
            if not typed and "name" in refused.problems:  # no name, so no slug could be made from it: one message
                refused.problems.pop("slug", None)
            form.slug.data = slug
            form.show_refusal(refused)
        else:
            flash(_("%(name)s is created, with the slug “%(slug)s”. Add its connectors and invite its "
                    "administrators from its pages.", name=organization.name, slug=organization.slug), "info")
            return redirect(url_for("org_admin.index"))
    status = 422 if request.method == "POST" else 200
    return render_template("org_admin/form.html", form=form, organization=None), status


@bp.route("/platform/organizations/<slug>/edit", methods=["GET", "POST"])
@global_admin_required
def edit(slug: str):
    """Change an organization's name, time zone and language. Refused input saves nothing."""
    organization = _organization(slug)
    form = EditOrganizationForm(obj=organization)
    if form.validate_on_submit():
        try:
            changed = organizations.edit(organization, name=form.name.data or "", timezone=form.timezone.data,
                                         language=form.language.data)
        except organizations.Refused as refused:
            form.show_refusal(refused)
        else:
            flash(_("The changes to %(name)s are saved.", name=organization.name) if changed
                  else _("Nothing changed: %(name)s is as it was.", name=organization.name), "info")
            return redirect(url_for("org_admin.index", archived="1" if organization.archived_at else None))
    status = 422 if request.method == "POST" else 200
    return render_template("org_admin/form.html", form=form, organization=organization), status


@bp.route("/platform/organizations/<slug>/archive", methods=["GET", "POST"])
@global_admin_required
def archive(slug: str):
    """GET: what archiving will do, and the button that does it. POST: archive."""
    organization = _organization(slug)
    if request.method == "POST":
        try:
            resolved = organizations.archive(organization)
        except organizations.NotApplicable as not_applicable:
            flash(str(not_applicable), "info")
        else:
            flash(_("%(name)s is archived: it is no longer synced and raises no alerts.", name=organization.name)
                  + " " + _("Open alerts resolved without notifications: %(num)d.", num=resolved), "info")
        return redirect(url_for("org_admin.index"))
    if organization.archived_at is not None:
        flash(_("%(name)s is archived already.", name=organization.name), "info")
        return redirect(url_for("org_admin.index", archived="1"))
    return render_template("org_admin/archive.html", organization=organization, **_consequences(organization))


@bp.post("/platform/organizations/<slug>/restore")
@global_admin_required
def restore(slug: str):
    """Make an archived organization active again."""
    organization = _organization(slug)
    try:
        organizations.restore(organization)
    except organizations.NotApplicable as not_applicable:
        flash(str(not_applicable), "info")
    else:
        flash(_("%(name)s is restored: it is synced and raises alerts again.", name=organization.name), "info")
    return redirect(url_for("org_admin.index"))


def _organization(slug: str) -> Organization:
    return organizations.find(slug) or abort(404)


def _consequences(organization: Organization) -> dict[str, int]:
    """What the confirmation names: the open alerts that will resolve and the connectors that will stop."""
    return {
        "open_alerts": db.session.scalar(sa.select(sa.func.count()).where(
            Alert.organization_id == organization.id, Alert.status == AlertStatus.OPEN)) or 0,
        "enabled_connectors": db.session.scalar(sa.select(sa.func.count()).where(
            Connector.organization_id == organization.id, Connector.enabled, Connector.removed_at.is_(None))) or 0,
    }
