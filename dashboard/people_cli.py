"""`flask users`: people and their roles from the command line (the People pages' twins)."""
from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from dashboard import people
from dashboard.database import writer
from dashboard.extensions import db
from dashboard.models import Membership, Organization, User, utcnow

users_cli = AppGroup("users", help="Manage users.")


@users_cli.command("create")
@click.argument("email")
@click.option("--name", default="", help="Display name (defaults to the email).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--org", "org_slugs", multiple=True, help="Slug of an organization to administer (repeatable).")
@click.option("--global-admin", is_flag=True, help="Make the user a global administrator.")
def create_user(email: str, name: str, password: str, org_slugs: tuple[str, ...], global_admin: bool) -> None:
    """Create a user who administers the given organizations, or the platform."""
    email = email.strip().lower()
    if db.session.scalar(sa.select(User).where(User.email == email)):
        raise click.ClickException(f"a user with email {email} exists already")
    if len(password) < 10:
        raise click.ClickException("the password must be at least 10 characters")
    orgs = []
    for slug in org_slugs:
        org = db.session.scalar(sa.select(Organization).where(Organization.slug == slug))
        if org is None:
            raise click.ClickException(f"no organization with slug {slug!r}")
        orgs.append(org)
    if not orgs and not global_admin:
        raise click.ClickException("give --org SLUG at least once, or --global-admin")
    user = User(email=email, name=name or email, is_global_admin=global_admin)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    db.session.add_all(Membership(user_id=user.id, organization_id=o.id) for o in orgs)
    db.session.commit()
    click.echo(f"Created {email}" + (" (global admin)" if global_admin else f" for {', '.join(org_slugs)}"))


def _user(email: str) -> User:
    user = db.session.scalar(sa.select(User).where(User.email == people.normalized_email(email)))
    if user is None:
        raise click.ClickException(f"no user {email!r}")
    return user


def _organization(slug: str) -> Organization:
    org = db.session.scalar(sa.select(Organization).where(Organization.slug == slug))
    if org is None:
        raise click.ClickException(f"no organization with slug {slug!r}")
    return org


@users_cli.command("remove-admin")
@click.argument("email")
@click.option("--org", "org_slug", required=True, help="Slug of the organization they no longer administer.")
def remove_admin(email: str, org_slug: str) -> None:
    """Take EMAIL's administrator role for one organization away; their sessions end at once."""
    user, org = _user(email), _organization(org_slug)
    try:
        with writer():
            people.remove_admin(org, user, utcnow())
            db.session.commit()
    except people.Refused as refusal:
        db.session.rollback()
        raise click.ClickException(str(refusal)) from None
    click.echo(f"{user.email} no longer administers {org_slug}; their sessions have ended")


@users_cli.command("invite")
@click.argument("email")
@click.option("--org", "org_slug", required=True, help="Slug of the organization to administer.")
def invite(email: str, org_slug: str) -> None:
    """Email EMAIL a link (valid 72 hours, single use) to become an administrator of the organization;
    an address with a pending invitation gets a new link."""
    org = _organization(org_slug)
    try:
        with writer():
            invitation, token = people.invite(org, email, utcnow())
            message = people.invitation_email(invitation, token, None)
            address, expires_at = invitation.email, invitation.expires_at
            db.session.commit()
    except people.Refused as refusal:
        db.session.rollback()
        raise click.ClickException(str(refusal)) from None
    problem = people.deliver(message)
    if problem is not None:
        raise click.ClickException(f"the invitation is saved but its email was not sent ({problem}); "
                                   f"run this command again to resend it")
    click.echo(f"Invited {address} to administer {org_slug}; the link expires at {expires_at:%Y-%m-%d %H:%M} UTC")
