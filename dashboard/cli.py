"""`flask` commands for administrators and for running the whole stack."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup

from dashboard.extensions import db
from dashboard.models import Connector, Membership, Organization, User
from dashboard.sync.actions import configure_connector
from dashboard.sync.connectors import registry, sandbox

users_cli = AppGroup("users", help="Manage users.")
alerts_cli = AppGroup("alerts", help="Try the alert rules on the stored sync log.")
connectors_cli = AppGroup("connectors", help="List connectors and set sandbox scenarios.")


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


@users_cli.command("remove-admin")
@click.argument("email")
@click.option("--org", "org_slug", required=True, help="Slug of the organization they no longer administer.")
def remove_admin(email: str, org_slug: str) -> None:
    """Take EMAIL's administrator role for one organization away; their sessions end at once."""
    from dashboard.sessions import revoke_sessions

    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    org = db.session.scalar(sa.select(Organization).where(Organization.slug == org_slug))
    if user is None or org is None:
        raise click.ClickException(f"no user {email!r}" if user is None else f"no organization with slug {org_slug!r}")
    membership = db.session.scalar(sa.select(Membership).where(Membership.user_id == user.id,
                                                                Membership.organization_id == org.id))
    if membership is None:
        raise click.ClickException(f"{user.email} does not administer {org_slug}")
    db.session.delete(membership)
    revoke_sessions(user.id)
    db.session.commit()
    click.echo(f"{user.email} no longer administers {org_slug}; their sessions have ended")


def _connector(org_slug: str, connector_id: int | None) -> Connector:
    org = db.session.scalar(sa.select(Organization).where(Organization.slug == org_slug))
    if org is None:
        raise click.ClickException(f"no organization with slug {org_slug!r}")
    query = sa.select(Connector).where(Connector.organization_id == org.id).order_by(Connector.id)
    if connector_id is not None:
        query = query.where(Connector.id == connector_id)
    connector = db.session.scalars(query).first()
    if connector is None:
        raise click.ClickException(f"{org_slug} has no such connector")
    return connector


@connectors_cli.command("add")
@click.argument("org_slug")
@click.option("--provider", "provider_name", required=True, help="A registered provider: sandbox, http, tripletex, "
                                                                   "fiken, external.")
@click.option("--name", required=True, help="What the organization calls it, such as \"Tripletex\".")
def add_connector_command(org_slug: str, provider_name: str, name: str) -> None:
    """Add a disabled connector to ORG_SLUG; set its settings and secret on the status screen, then enable it."""
    from dashboard.sync.actions import ActionRefused, add_connector

    org = db.session.scalar(sa.select(Organization).where(Organization.slug == org_slug))
    if org is None:
        raise click.ClickException(f"no organization with slug {org_slug!r}")
    try:
        connector = add_connector(org, provider_name, name)
    except ActionRefused as refused:
        raise click.ClickException(str(refused)) from None
    click.echo(f"Added connector #{connector.id} ({provider_name}) to {org_slug}, disabled: set its settings and "
               f"secret at /orgs/{org_slug}/integration, then enable it")


@connectors_cli.command("list")
def list_connectors() -> None:
    """Every connector with its organization, provider, state and what the status screen shows of its settings."""
    rows = db.session.execute(
        sa.select(Organization.slug, Connector).join(Connector, Connector.organization_id == Organization.id)
        .order_by(Organization.slug, Connector.id)
    ).all()
    for slug, c in rows:
        provider = registry.provider(c.provider)
        state = "enabled" if c.enabled else "disabled"
        shown = "; ".join(description for _term, description in provider.summary(c.settings or {}))
        click.echo(f"{slug}\t#{c.id}\t{c.name}\t{provider.label}\t{state}\t{shown}")


@connectors_cli.command("scenario")
@click.argument("org_slug")
@click.argument("scenario")
@click.option("--connector", "connector_id", type=int, help="Connector id (default: the organization's first).")
@click.option("--record-type", help="For period_locked and invalid_vat_code: the record type that fails.")
@click.option("--share", type=float, help="For mapping_missing and flaky: the share of records that fail.")
@click.option("--seed", type=int, help="For mapping_missing and flaky: the seed that picks them.")
def set_scenario(org_slug: str, scenario: str, connector_id: int | None, record_type: str | None,
                 share: float | None, seed: int | None) -> None:
    """Set a sandbox connector's simulated scenario (healthy, period_locked, down, ...)."""
    connector = _connector(org_slug, connector_id)
    if connector.provider != registry.SANDBOX.name:
        raise click.ClickException(f"connector #{connector.id} is not a sandbox connector")
    settings: dict[str, Any] = {"scenario": scenario}
    for key, value in (("record_type", record_type), ("share", share), ("seed", seed)):
        if value is not None:
            settings[key] = value
    problems = sandbox.validate_settings(settings)
    if problems:
        raise click.ClickException("; ".join(problems))
    configure_connector(connector.organization, connector.id, None, enabled=connector.enabled, settings=settings)
    click.echo(f"{org_slug} connector #{connector.id}: {settings}")


@connectors_cli.command("enable")
@click.argument("org_slug")
@click.option("--connector", "connector_id", type=int)
def enable_connector(org_slug: str, connector_id: int | None) -> None:
    """Enable a connector, so it is synced again (at once, when this service pushes its records)."""
    connector = _connector(org_slug, connector_id)
    configure_connector(connector.organization, connector.id, None, enabled=True, settings=connector.settings)


@connectors_cli.command("disable")
@click.argument("org_slug")
@click.option("--connector", "connector_id", type=int)
def disable_connector(org_slug: str, connector_id: int | None) -> None:
    """Disable a connector: it is not synced and raises no stale-sync alert."""
    connector = _connector(org_slug, connector_id)
    configure_connector(connector.organization, connector.id, None, enabled=False, settings=connector.settings)


@alerts_cli.command("replay")
@click.option("--org", "org_slugs", multiple=True, help="Slug of an organization to replay (repeatable; none: all "
                                                          "organizations, as global admins hear them together).")
@click.option("--from", "first_day", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First day of the period, YYYY-MM-DD (UTC).")
@click.option("--to", "last_day", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Last day of the period, YYYY-MM-DD (UTC), included.")
@click.option("--set", "changes", multiple=True, metavar="KEY=VALUE",
              help="Replay with a setting changed (repeatable): consecutive, threshold, window, stale, rearm, budget "
                   "(the organizations'), grouping_wait, incident_min (the platform's).")
def replay_command(org_slugs: tuple[str, ...], first_day: datetime, last_day: datetime, changes: tuple[str, ...]) -> None:
    """Run the alert rules over the sync log of a period on a virtual clock and print, per day and person, the
    alerts and notifications they would have made. Writes nothing, notifies nobody."""
    from dashboard.alerts.replay import ReplayError, parse_settings, replay

    if last_day < first_day:
        raise click.UsageError("--to must not be before --from")
    try:
        report = replay(list(org_slugs) or None, first_day, last_day + timedelta(days=1), parse_settings(changes))
    except ReplayError as error:
        raise click.UsageError(str(error)) from None
    click.echo(report.format())


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when any organization exists.")
def seed_demo_command(if_empty: bool) -> None:
    """Create the demo organizations, admins and records (safe to run twice)."""
    from dashboard.demo import seed_demo

    if if_empty and db.session.scalar(sa.select(sa.func.count()).select_from(Organization)):
        click.echo("Demo data: the database has organizations already; nothing seeded.")
        return
    logins = seed_demo()
    click.echo("Demo logins (email / password):")
    for email, password in logins:
        click.echo(f"  {email} / {password}")


@click.command("run-all")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--stop", is_flag=True, help="Stop the stack running on this instance folder, and wait until it has.")
def run_all_command(host: str, port: int, stop: bool) -> None:
    """Run embedded Redis, web (gunicorn + gevent), an RQ worker and the scheduler, restarting what dies.

    Runs until Ctrl-C, SIGTERM or `flask run-all --stop`; exits non-zero when a part died five
    times within five minutes. One stack per instance folder (instance/run.lock).
    """
    from dashboard.supervisor import AlreadyRunning, run_all, stop_running

    if stop:
        try:
            click.echo(stop_running())
        except TimeoutError as error:
            raise click.ClickException(str(error)) from error
        return
    try:
        status = run_all(host, port)
    except AlreadyRunning as error:
        raise click.ClickException(str(error)) from error
    raise SystemExit(status)


def register_commands(app: Flask) -> None:
    from dashboard.mail.cli import mail_cli
    from dashboard.retention_cli import retention_cli
    from dashboard.tokens import tokens_cli

    app.cli.add_command(tokens_cli)
    app.cli.add_command(retention_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(alerts_cli)
    app.cli.add_command(connectors_cli)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(run_all_command)
