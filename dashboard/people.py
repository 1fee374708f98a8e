"""People: invitations, removing an administrator, the global admin role, and password resets.

The People pages and `flask users` both go through these actions. Each adds its audit entry in the
caller's transaction (the caller commits, once); none sends email: the caller commits first, then
sends the message these functions compose (`invitation_email`, `reset_email`) through `deliver`,
outside any transaction. Links carry a random token; only its SHA-256 is stored (as API tokens).
Every function takes `now`, so tests move the clock.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from dashboard import audit
from dashboard.alerts.writer import lock_platform
from dashboard.extensions import db
from dashboard.formatting import single_line
from dashboard.i18n import language_for, organization_language
from dashboard.mail import transport
from dashboard.mail.compose import mail_domain
from dashboard.mail.links import public_url
from dashboard.models import Invitation, Membership, Notification, Organization, PasswordReset, User
from dashboard.sessions import revoke_sessions
from dashboard.tokens import hash_token
from dashboard.vocabulary import AuditAction

INVITATION_LIFETIME = timedelta(hours=72)
RESET_LIFETIME = timedelta(hours=1)
PASSWORD_MIN_LENGTH = 10
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Refused(Exception):
    """The action is not allowed as asked; the message says why, for the page or the command."""


# Pure parts ------------------------------------------------------------------------------------------------

def normalized_email(address: str) -> str:
    return address.strip().lower()


def is_email(address: str) -> bool:
    return len(address) <= 254 and EMAIL_PATTERN.match(address) is not None


def new_token() -> tuple[str, str]:
    """A link's secret and the hash that is stored."""
    plaintext = secrets.token_urlsafe(32)
    return plaintext, hash_token(plaintext)


def invitation_state(invitation: Invitation, now: datetime) -> str:
    """"accepted", "revoked", "expired" or "pending"."""
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    return "expired" if invitation.expires_at <= now else "pending"


# Invitations -----------------------------------------------------------------------------------------------

def pending_invitations(organization_id: int) -> list[Invitation]:
    """Neither accepted nor revoked (expired ones included: they can be resent), newest first."""
    return list(db.session.scalars(
        sa.select(Invitation).where(Invitation.organization_id == organization_id,
                                    Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())))


def administers(user_id: int, organization_id: int) -> bool:
    return db.session.scalar(sa.select(Membership.id).where(Membership.user_id == user_id,
                                                            Membership.organization_id == organization_id)) is not None


def invite(organization: Organization, email: str, now: datetime, *, by: User | None = None) -> tuple[Invitation, str]:
    """Invite `email` to administer the organization; returns the invitation and its link's token.

    Refused for an address that administers it already. An address with a pending invitation gets it
    again with a new link (the old one stops working): one pending invitation per address.
    """
    email = normalized_email(email)
    if not is_email(email):
        raise Refused(_("Enter an email address such as name@example.org."))
    user_id = db.session.scalar(sa.select(User.id).where(User.email == email))
    if user_id is not None and administers(user_id, organization.id):
        raise Refused(_("%(email)s administers %(org)s already.", email=email, org=organization.name))
    pending = db.session.scalar(sa.select(Invitation).where(
        Invitation.organization_id == organization.id, Invitation.email == email,
        Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None)))
    if pending is not None:
        return pending, resend(pending, now, by=by)
    token, token_hash = new_token()
    invitation = Invitation(organization_id=organization.id, email=email, token_hash=token_hash,
                            invited_by_id=by.id if by else None, created_at=now, sent_at=now,
                            expires_at=now + INVITATION_LIFETIME)
    db.session.add(invitation)
    db.session.flush()
    audit.record(AuditAction.INVITATION_SENT, organization_id=organization.id, actor=by,
                 target=("invitation", invitation.id, email), at=now)
    return invitation, token


def resend(invitation: Invitation, now: datetime, *, by: User | None = None) -> str:
    """A new link valid for `INVITATION_LIFETIME` from now; the old link stops working."""
    if invitation_state(invitation, now) not in ("pending", "expired"):
        raise Refused(_("That invitation was accepted or revoked: invite the address again instead."))
    token, invitation.token_hash = new_token()
    invitation.sent_at = now
    invitation.expires_at = now + INVITATION_LIFETIME
    audit.record(AuditAction.INVITATION_RESENT, organization_id=invitation.organization_id, actor=by,
                 target=("invitation", invitation.id, invitation.email), at=now)
    return token


def revoke(invitation: Invitation, now: datetime, *, by: User | None = None) -> None:
    if invitation_state(invitation, now) not in ("pending", "expired"):
        raise Refused(_("That invitation was accepted or revoked already."))
    invitation.revoked_at = now
    audit.record(AuditAction.INVITATION_REVOKED, organization_id=invitation.organization_id, actor=by,
                 target=("invitation", invitation.id, invitation.email), at=now)


def usable_invitation(token: str, now: datetime) -> Invitation | None:
    """The invitation of this link if it can still be accepted (not used, revoked or expired)."""
    invitation = db.session.scalar(sa.select(Invitation).where(Invitation.token_hash == hash_token(token)))
    if invitation is None or invitation_state(invitation, now) != "pending":
        return None
    return invitation


def existing_account(invitation: Invitation) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == invitation.email))


def accept(invitation: Invitation, now: datetime, *, name: str = "", password: str = "") -> User:
    """Accept: a new account with `name` and `password`, or, when the address has an account, that account
    (`password` must be its password). Adds the membership and marks the invitation used."""
    user = existing_account(invitation)
    if user is None:
        if len(password) < PASSWORD_MIN_LENGTH:
            raise Refused(_("The password must be at least %(num)d characters.", num=PASSWORD_MIN_LENGTH))
        user = User(email=invitation.email, name=name.strip() or invitation.email, session_version=0)
        user.set_password(password)
        db.session.add(user)
        db.session.flush()
    elif not user.check_password(password):
        raise Refused(_("That is not the password of %(email)s.", email=invitation.email))
    if not administers(user.id, invitation.organization_id):
        db.session.add(Membership(user_id=user.id, organization_id=invitation.organization_id))
    invitation.accepted_at = now
    invitation.accepted_by_id = user.id
    audit.record(AuditAction.INVITATION_ACCEPTED, organization_id=invitation.organization_id, actor=user,
                 target=("invitation", invitation.id, invitation.email), at=now)
    return user


# Removing an administrator ---------------------------------------------------------------------------------

def admins(organization_id: int) -> list[User]:
    return list(db.session.scalars(
        sa.select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.organization_id == organization_id).order_by(User.name, User.email)))


def remove_admin(organization: Organization, user: User, now: datetime, *, by: User | None = None) -> None:
    """The user no longer administers the organization: the membership goes, every session of theirs ends,
    and their notifications of that organization are deleted (their emails not yet sent with them)."""
    membership = db.session.scalar(sa.select(Membership).where(Membership.user_id == user.id,
                                                                Membership.organization_id == organization.id))
    if membership is None:
        raise Refused(_("%(email)s does not administer %(org)s.", email=user.email, org=organization.name))
    db.session.delete(membership)
    db.session.execute(sa.delete(Notification).where(Notification.user_id == user.id,
                                                      Notification.organization_id == organization.id))
    revoke_sessions(user.id)
    audit.record(AuditAction.ADMIN_REMOVED, organization_id=organization.id, actor=by,
                 target=("user", user.id, user.email), at=now)


# The global admin role -------------------------------------------------------------------------------------

def set_global_admin(user: User, grant: bool, now: datetime, *, by: User | None = None) -> bool:
    """Make or unmake a global admin; False when the user was so already (nothing changes).

    Every role change first locks the platform settings row, so the count of global admins it checks
    cannot change before it commits: two admins unmaking each other at once leave one. Unmaking ends
    the user's sessions. Refused for the last global admin.
    """
    lock_platform()
    db.session.refresh(user)
    if user.is_global_admin == grant:
        return False
    if not grant:
        others = db.session.scalar(sa.select(sa.func.count()).select_from(User)
                                   .where(User.is_global_admin.is_(True), User.id != user.id))
        if not others:
            raise Refused(_("%(email)s is the last global admin: make someone else a global admin first.",
                            email=user.email))
    user.is_global_admin = grant
    if not grant:
        revoke_sessions(user.id)
    audit.record(AuditAction.GLOBAL_ADMIN_GRANTED if grant else AuditAction.GLOBAL_ADMIN_REVOKED,
                 organization_id=None, actor=by, target=("user", user.id, user.email), at=now)
    return True


# Password resets -------------------------------------------------------------------------------------------

def request_reset(email: str, now: datetime) -> tuple[User, str] | None:
    """A reset link for the account using `email`, or None when no account does (the caller answers alike)."""
    address = normalized_email(email)
    user = db.session.scalar(sa.select(User).where(User.email == address))
    if user is None:
        return None
    token, token_hash = new_token()
    end_resets(user.id, now)  # only the newest link works
    reset = PasswordReset(user_id=user.id, token_hash=token_hash, created_at=now, expires_at=now + RESET_LIFETIME)
    db.session.add(reset)
    db.session.flush()
    audit.record(AuditAction.PASSWORD_RESET_REQUESTED, organization_id=None, actor=None, actor_email=address,
                 target=("user", user.id, user.email), at=now)
    return user, token


def end_resets(user_id: int, now: datetime) -> None:
    """Use up every unused reset link of the user: after a new link, a reset or a password change."""
    db.session.execute(sa.update(PasswordReset).where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None))
                       .values(used_at=now).execution_options(synchronize_session="fetch"))


def usable_reset(token: str, now: datetime) -> PasswordReset | None:
    reset = db.session.scalar(sa.select(PasswordReset).where(PasswordReset.token_hash == hash_token(token)))
    if reset is None or reset.used_at is not None or reset.expires_at <= now:
        return None
    return reset


def reset_password(reset: PasswordReset, password: str, now: datetime) -> tuple[User, int]:
    """Set the new password, use the link up, end every session of the user; returns the user and the
    session version a new session signs in with."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise Refused(_("The password must be at least %(num)d characters.", num=PASSWORD_MIN_LENGTH))
    user = db.session.get(User, reset.user_id)
    assert user is not None  # the reset is deleted with its user
    user.set_password(password)
    end_resets(user.id, now)  # this link, and any other still unused
    version = revoke_sessions(user.id)
    audit.record(AuditAction.PASSWORD_RESET, organization_id=None, actor=user, target=("user", user.id, user.email),
                 at=now)
    return user, version


# Emails ----------------------------------------------------------------------------------------------------

def invitation_email(invitation: Invitation, token: str, inviter_name: str | None) -> EmailMessage:
    """In the language of the address's account if it has one, else in the organization's."""
    organization = db.session.get(Organization, invitation.organization_id)
    assert organization is not None
    account = existing_account(invitation)
    language = language_for(account, organization) if account else organization_language(organization)
    with force_locale(language):
        subject = _("You are invited to administer sync alerts for %(org)s", org=organization.name)
        context = {"subject": subject, "organization_name": organization.name, "inviter": inviter_name,
                   "link": public_url(f"/invitations/{token}"),
                   "hours": int(INVITATION_LIFETIME.total_seconds() // 3600)}
        return _message(invitation.email, None, subject, "invitation", context, language)


def reset_email(user: User, token: str) -> EmailMessage:
    """In the person's language (their choice, else their organization's)."""
    language = language_for(user)
    with force_locale(language):
        subject = _("Set a new password for sync alerts")
        context = {"subject": subject, "name": user.name, "link": public_url(f"/password/reset/{token}"),
                   "minutes": int(RESET_LIFETIME.total_seconds() // 60)}
        return _message(user.email, user.name, subject, "password_reset", context, language)


def _message(to: str, name: str | None, subject: str, template: str, context: dict, language: str) -> EmailMessage:
    config = current_app.config
    context = {**context, "lang": language}
    environment = current_app.jinja_env
    message = EmailMessage()
    message["Subject"] = single_line(subject)
    message["From"] = config["MAIL_FROM"]
    message["To"] = Address(display_name=single_line(name or ""), addr_spec=to)
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = make_msgid(template.replace("_", "-"), mail_domain(config["MAIL_FROM"],
                                                                            config["PUBLIC_BASE_URL"]))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(environment.get_template(f"email/{template}.txt").render(**context))
    message.add_alternative(environment.get_template(f"email/{template}.html").render(**context), subtype="html")
    return message


def deliver(message: EmailMessage) -> str | None:
    """Send (never inside a transaction); None when it left, else why not."""
    try:
        transport.send(message)
    except transport.TransportError as error:
        current_app.logger.warning("email to %s not sent: %s", message["To"], error)
        return str(error)
    return None
