"""Acknowledge, snooze and end the snooze of an organization's alert, from the alerts page or the status screen.

htmx gets the alert's handling region alone (`alerts/_actions.html`, its own target): focused on what changed,
or, for bad input, the form with its problem (422). A plain browser goes back to the page it came from with a
flash message. Organization admins of the alert's organization and global admins may act; anyone else gets 404.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from dashboard.alerts import acknowledge as handling
from dashboard.extensions import db
from dashboard.formatting import localtime
from dashboard.models import Alert, Organization, User, of_organization, utcnow
from dashboard.web.access import org_view
from dashboard.web.alert_action_forms import SNOOZE_CHOICES, AcknowledgeForm, SnoozeForm
from dashboard.web.fragments import wants_fragment

bp = Blueprint("alert_actions", __name__)


@bp.app_template_global()
def snoozed(alert: Alert) -> bool:
    """The alert's snooze is running now."""
    return handling.is_snoozed(alert, utcnow())


@bp.app_template_global()
def snoozed_until_of(detail: str) -> datetime | None:
    """When a snoozed event's snooze was to end (naive UTC), or None for a snooze ended early."""
    try:
        return datetime.fromisoformat(detail.removesuffix("Z"))
    except ValueError:
        return None


bp.add_app_template_global(SNOOZE_CHOICES, "snooze_choices")


@bp.post("/orgs/<org>/alerts/<int:alert_id>/acknowledge")
@org_view
def acknowledge(org: Organization, alert_id: int) -> Any:
    """Say "I'm on it", with an optional note."""
    alert = _alert(org, alert_id)
    form = AcknowledgeForm()
    if not form.validate():
        return _problem(org, alert, ack_form=form)
    try:
        handling.acknowledge(alert, _user(), form.note.data or "", utcnow())
    except handling.Refused as refusal:
        return _refused(org, alert, str(refusal))
    db.session.commit()
    return _done(org, alert, _("You acknowledged the alert: the other administrators see that you are on it."))


@bp.post("/orgs/<org>/alerts/<int:alert_id>/snooze")
@org_view
def snooze(org: Organization, alert_id: int) -> Any:
    """Hold the alert's notifications back for a while, or until a local time."""
    alert = _alert(org, alert_id)
    form = SnoozeForm()
    now = utcnow()
    until = form.snooze_end(org.timezone, now) if form.validate() else None
    if until is None:
        return _problem(org, alert, snooze_form=form)
    try:
        handling.snooze(alert, _user(), until, now)
    except handling.Refused as refusal:
        return _refused(org, alert, str(refusal))
    db.session.commit()
    return _done(org, alert, _("The alert is snoozed until %(time)s.", time=localtime(until, org)))


@bp.post("/orgs/<org>/alerts/<int:alert_id>/unsnooze")
@org_view
def unsnooze(org: Organization, alert_id: int) -> Any:
    """End the alert's snooze now."""
    alert = _alert(org, alert_id)
    try:
        handling.end_snooze(alert, _user(), utcnow())
    except handling.Refused as refusal:
        return _refused(org, alert, str(refusal))
    db.session.commit()
    return _done(org, alert, _("The snooze has ended: the alert's notifications go out as due again."))


def _user() -> User:
    """The signed-in user itself (not the proxy): the alert refers to it."""
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _alert(org: Organization, alert_id: int) -> Alert:
    """The organization's alert, or 404 (another organization's alert, or a platform alert, as if none)."""
    return of_organization(Alert, org.id, alert_id) or abort(404)


def _done(org: Organization, alert: Alert, message: str) -> Any:
    if not wants_fragment():
        flash(message, "info")
        return redirect(_back(org, alert))
    return render_template("alerts/_actions.html", org=org, alert=alert, acted_on=alert.id, done=message)


def _problem(org: Organization, alert: Alert, **forms: Any) -> Any:
    """Bad input: the form with its problem (422), nothing changed."""
    if not wants_fragment():
        for form in forms.values():
            for errors in form.errors.values():
                for error in errors:
                    flash(error, "error")
        return redirect(_back(org, alert))
    return render_template("alerts/_actions.html", org=org, alert=alert, acted_on=alert.id, **forms), 422


def _refused(org: Organization, alert: Alert, message: str) -> Any:
    """Refused as asked (resolved meanwhile, acknowledged already ...): say why (422), changing nothing."""
    db.session.rollback()
    if not wants_fragment():
        flash(message, "error")
        return redirect(_back(org, alert))
    fresh = db.session.get(Alert, alert.id)
    return render_template("alerts/_actions.html", org=org, alert=fresh, acted_on=alert.id, refused=message), 422


def _back(org: Organization, alert: Alert) -> str:
    """The page the form was on (this organization's alerts page or status screen), at the alert's handling."""
    target = request.form.get("next") or ""
    parts = urlsplit(target)
    pages = {url_for("alerts.index", org=org.slug), url_for("status.screen", org=org.slug)}
    if parts.scheme or parts.netloc or parts.path not in pages or "\\" in target:
        target = url_for("alerts.index", org=org.slug)
    return f"{target.split('#', 1)[0]}#alert-{alert.id}-handling"
