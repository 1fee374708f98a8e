"""People: an organization's administrators and invitations, accepting an invitation, and the global admins.

The actions are `dashboard.people`'s; these views commit them (one short write transaction each) and
send any email afterwards, outside the transaction.
"""
from __future__ import annotations

from email.message import EmailMessage

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user

from dashboard import people
from dashboard.database import write_transaction
from dashboard.extensions import db
from dashboard.models import Invitation, Membership, Organization, User, of_organization, utcnow
from dashboard.sessions import start_session
from dashboard.web.access import global_admin_required, org_view
from dashboard.web.people_forms import AcceptExistingForm, AcceptForm, InviteForm

bp = Blueprint("people", __name__)


@bp.route("/orgs/<org>/people", methods=["GET", "POST"])
@org_view
def organization(org: Organization):
    """The organization's administrators and pending invitations; POST invites an address."""
    form = InviteForm()
    if form.validate_on_submit():
        now = utcnow()
        try:
            with write_transaction():
                invitation, token = people.invite(org, form.email.data, now, by=current_user)
                message = people.invitation_email(invitation, token, current_user.name)
        except people.Refused as refusal:
            form.email.errors.append(str(refusal))
        else:
            _send_invitation(message)
            return redirect(url_for("people.organization", org=org.slug))
    status = 422 if request.method == "POST" else 200
    return _page(org, form), status


@bp.post("/orgs/<org>/people/invitations/<int:invitation_id>/resend")
@org_view
def resend(org: Organization, invitation_id: int):
    """A new link valid for 72 hours from now; the old one stops working."""
    now = utcnow()
    try:
        with write_transaction():
            invitation = of_organization(Invitation, org.id, invitation_id) or abort(404)
            token = people.resend(invitation, now, by=current_user)
            message = people.invitation_email(invitation, token, current_user.name)
    except people.Refused as refusal:
        flash(str(refusal), "error")
    else:
        _send_invitation(message)
    return redirect(url_for("people.organization", org=org.slug))


@bp.post("/orgs/<org>/people/invitations/<int:invitation_id>/revoke")
@org_view
def revoke(org: Organization, invitation_id: int):
    now = utcnow()
    try:
        with write_transaction():
            invitation = of_organization(Invitation, org.id, invitation_id) or abort(404)
            people.revoke(invitation, now, by=current_user)
            email = invitation.email
    except people.Refused as refusal:
        flash(str(refusal), "error")
    else:
        flash(_("The invitation of %(email)s is revoked: its link no longer works.", email=email), "info")
    return redirect(url_for("people.organization", org=org.slug))


@bp.route("/orgs/<org>/people/<int:user_id>/remove", methods=["GET", "POST"])
@org_view
def remove_admin(org: Organization, user_id: int):
    """GET asks to confirm; POST removes the administrator (their sessions end, and their notifications
    of the organization go). Removing oneself signs one out."""
    person = _admin_of(org, user_id)
    if request.method == "GET":
        return render_template("people/remove.html", org=org, person=person,
                               yourself=person.id == current_user.id)
    yourself, name = person.id == current_user.id, person.name
    with write_transaction():
        people.remove_admin(org, person, utcnow(), by=current_user)
    if yourself:
        logout_user()
        session.clear()
        flash(_("You no longer administer %(org)s, and you are signed out.", org=org.name), "info")
        return redirect(url_for("auth.login"))
    flash(_("%(name)s no longer administers %(org)s: their sessions have ended.", name=name, org=org.name),
          "info")
    return redirect(url_for("people.organization", org=org.slug))


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept(token: str):
    """Accept an invitation: a new account (name and password), or the password of the address's account."""
    now = utcnow()
    invitation = people.usable_invitation(token, now)
    if invitation is None:
        return _invalid_link(), 410
    org = db.session.get(Organization, invitation.organization_id)
    existing = people.existing_account(invitation)
    form = AcceptExistingForm() if existing else AcceptForm()
    if form.validate_on_submit():
        try:
            with write_transaction():
                invitation = people.usable_invitation(token, now)
                if invitation is None:
                    return _invalid_link(), 410
                name = form.name.data if isinstance(form, AcceptForm) else ""
                user = people.accept(invitation, now, name=name, password=form.password.data)
                version = user.session_version
        except people.Refused as refusal:
            form.password.errors.append(str(refusal))
        else:
            start_session(user, version)
            flash(_("Welcome: you administer %(org)s.", org=org.name), "info")
            return redirect(url_for("status.screen", org=org.slug))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/accept.html", form=form, org=org, invitation=invitation, existing=existing), status


@bp.get("/platform/people")
@global_admin_required
def platform():
    """Every user, the organizations they administer, and whether they are a global admin."""
    users = list(db.session.scalars(sa.select(User).order_by(User.name, User.email)))
    rows = db.session.execute(sa.select(Membership.user_id, Organization.name)
                              .join(Organization, Organization.id == Membership.organization_id)
                              .order_by(Organization.name)).all()
    organizations: dict[int, list[str]] = {}
    for user_id, name in rows:
        organizations.setdefault(user_id, []).append(name)
    return render_template("people/platform.html", users=users, organizations=organizations)


@bp.post("/platform/people/<int:user_id>/global-admin")
@global_admin_required
def set_global_admin(user_id: int):
    """Make (`grant=1`) or unmake (`grant=0`) a global admin; never the last one."""
    grant = request.form.get("grant") == "1"
    yourself = user_id == current_user.id
    try:
        with write_transaction():
            person = db.session.get(User, user_id) or abort(404)
            changed = people.set_global_admin(person, grant, utcnow(), by=current_user)
            name = person.name
    except people.Refused as refusal:
        flash(str(refusal), "error")
        return redirect(url_for("people.platform"))
    if changed and yourself and not grant:
        logout_user()
        session.clear()
        flash(_("You are no longer a global admin, and you are signed out."), "info")
        return redirect(url_for("auth.login"))
    if not changed:
        flash(_("Nothing changed: %(name)s was so already.", name=name), "info")
    elif grant:
        flash(_("%(name)s is a global admin now.", name=name), "info")
    else:
        flash(_("%(name)s is no longer a global admin: their sessions have ended.", name=name), "info")
    return redirect(url_for("people.platform"))


# Helpers --------------------------------------------------------------------------------------------------

def _page(org: Organization, form: InviteForm) -> str:
    invitations = people.pending_invitations(org.id)
    inviters = {i.invited_by_id for i in invitations} - {None}
    names = dict(db.session.execute(sa.select(User.id, User.name).where(User.id.in_(inviters))).all())
    return render_template("people/organization.html", org=org, form=form, admins=people.admins(org.id),
                           invitations=invitations, names=names, now=utcnow(), state=people.invitation_state)


def _admin_of(org: Organization, user_id: int) -> User:
    """An administrator of this organization, or 404 (as any row of another organization)."""
    person = db.session.get(User, user_id)
    if person is None or not people.administers(person.id, org.id):
        abort(404)
    return person


def _send_invitation(message: EmailMessage) -> None:
    """Email the link (after the commit) and say on the page whether it left."""
    email = message["To"].addresses[0].addr_spec
    problem = people.deliver(message)
    if problem is None:
        flash(_("The invitation is sent to %(email)s; its link works for 72 hours.", email=email), "info")
    else:
        flash(_("The invitation to %(email)s is saved, but its email could not be sent (%(problem)s). "
                "Resend it once email works again.", email=email, problem=problem), "error")


def _invalid_link() -> str:
    return render_template("people/invalid_link.html", kind="invitation")
