"""`flask` commands for administrators and for running the whole stack."""
from __future__ import annotations

from datetime import datetime, timedelta

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup

from dashboard.extensions import db
from dashboard.models import Organization

alerts_cli = AppGroup("alerts", help="Try the alert rules on the stored sync log.")


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
    from dashboard.connectors_cli import connectors_cli
    from dashboard.mail.cli import mail_cli
    from dashboard.organizations_cli import orgs_cli
    from dashboard.people_cli import users_cli
    from dashboard.retention_cli import retention_cli
    from dashboard.tokens import tokens_cli

    app.cli.add_command(tokens_cli)
    app.cli.add_command(retention_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(orgs_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(alerts_cli)
    app.cli.add_command(connectors_cli)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(run_all_command)
