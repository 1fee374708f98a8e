"""An organization's connectors (its administrators and global admins): list, add, enable, disable, remove.

Each change goes through `dashboard.sync.actions` (as `flask connectors` does), which logs it. A new
connector starts disabled; its provider's settings and write-only secret are set, and the connection
tested, with the settings editor on the status screen, where adding one leads. Removing one keeps it
(and its records and sync log), marked removed, hidden unless asked for.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import werkzeug.exceptions
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from dashboard.extensions import db
from dashboard.models import Connector, Organization
from dashboard.sync import actions
from dashboard.sync.connectors import registry
from dashboard.web.access import org_view
from dashboard.web.connector_admin_forms import PROVIDER_DESCRIPTIONS, AddConnectorForm

bp = Blueprint("connector_admin", __name__)


@bp.errorhandler(actions.NotFound)
def _not_found(_error: actions.NotFound) -> Any:
    """Another organization's connector, or a removed one, answers 404, as if it did not exist."""
    return current_app.handle_http_exception(werkzeug.exceptions.NotFound())


@bp.get("/orgs/<org>/connectors")
@org_view
def index(org: Organization) -> Any:
    """The connectors; `?removed=1` lists the removed ones too, marked."""
    return _page(org)


@bp.route("/orgs/<org>/connectors/new", methods=["GET", "POST"])
@org_view
def new(org: Organization) -> Any:
    """Add a connector (disabled), then set its settings and secret on the status screen."""
    form = AddConnectorForm()
    if form.validate_on_submit():
        try:
            connector = actions.add_connector(org, form.provider.data, form.name.data, current_user)
        except actions.ActionRefused as refused:
            form.name.errors = [*form.name.errors, str(refused)]
        else:
            flash(_("%(name)s is added, disabled. Set its settings below, test the connection, and tick Enabled when "
                    "it works.", name=connector.name), "info")
            return redirect(url_for("status.screen", org=org.slug, _anchor=f"enabled-{connector.id}"))
    status = 422 if request.method == "POST" else 200
    return render_template("connector_admin/new.html", org=org, form=form, providers=registry.PROVIDERS.values(),
                           descriptions=PROVIDER_DESCRIPTIONS), status


@bp.post("/orgs/<org>/connectors/<int:connector_id>/enable")
@org_view
def enable(org: Organization, connector_id: int) -> Any:
    return _switch(org, connector_id, True)


@bp.post("/orgs/<org>/connectors/<int:connector_id>/disable")
@org_view
def disable(org: Organization, connector_id: int) -> Any:
    return _switch(org, connector_id, False)


@bp.route("/orgs/<org>/connectors/<int:connector_id>/remove", methods=["GET", "POST"])
@org_view
def remove(org: Organization, connector_id: int) -> Any:
    """Ask to confirm (GET), then remove (POST): never synced again, hidden; its records and sync log stay."""
    if request.method == "GET":
        connector = actions.active_connector(org, connector_id)
        return render_template("connector_admin/remove.html", org=org, connector=connector,
                               provider=registry.provider(connector.provider))
    removed = actions.remove_connector(org, connector_id, current_user)
    flash(_("%(name)s is removed: it is not synced any more. Its records and sync log stay.", name=removed.name),
          "info")
    return redirect(url_for("connector_admin.index", org=org.slug))


def _switch(org: Organization, connector_id: int, enabled: bool) -> Any:
    try:
        connector = (actions.enable_connector if enabled else actions.disable_connector)(
            org, connector_id, current_user)
    except actions.ActionRefused as refused:
        return _page(org, error=str(refused), status=422)
    if enabled:
        flash(_("%(name)s is enabled.", name=connector.name), "info")
    else:
        flash(_("%(name)s is disabled: it is not synced, and raises no stale-sync alert, until it is enabled again.",
                name=connector.name), "info")
    return redirect(url_for("connector_admin.index", org=org.slug))


def _page(org: Organization, *, error: str | None = None, status: int = 200) -> Any:
    show_removed = request.args.get("removed") == "1"
    query = sa.select(Connector).where(Connector.organization_id == org.id).order_by(Connector.id)
    if not show_removed:
        query = query.where(Connector.removed_at.is_(None))
    connectors = db.session.scalars(query).all()
    return render_template("connector_admin/index.html", org=org, connectors=connectors, show_removed=show_removed,
                           provider=registry.provider, error=error), status
