"""`flask orgs`: organizations from the command line (the organization pages' twins).

The commands go through `dashboard.organizations`, as the pages do: the same checks, the same audit entries
(with no actor: whoever ran the command is not known to the app).
"""
from __future__ import annotations

import click
from flask.cli import AppGroup

from dashboard import organizations
from dashboard.formatting import DEFAULT_TIME_ZONE
from dashboard.models import Organization
from dashboard.vocabulary import LANGUAGES

orgs_cli = AppGroup("orgs", help="Create, list and archive organizations.")


def _organization(slug: str) -> Organization:
    organization = organizations.find(slug)
    if organization is None:
        raise click.ClickException(f"no organization with slug {slug!r}")
    return organization


@orgs_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="The organization's name, as its pages show it.")
@click.option("--timezone", default=DEFAULT_TIME_ZONE, show_default=True, help="An IANA time zone name.")
@click.option("--language", type=click.Choice(LANGUAGES), default=organizations.DEFAULT_LANGUAGE, show_default=True,
              help="The interface language of its administrators who chose none.")
def create_command(slug: str, name: str, timezone: str, language: str) -> None:
    """Create an organization with the slug SLUG (lowercase letters, digits and hyphens)."""
    try:
        organization = organizations.create(slug=slug, name=name, timezone=timezone, language=language)
    except organizations.Refused as refused:
        raise click.ClickException(str(refused)) from None
    click.echo(f"Created {organization.slug} ({organization.name}); add connectors with `flask connectors add "
               f"{organization.slug}` and admins with `flask users create --org {organization.slug}`")


@orgs_cli.command("list")
@click.option("--archived", is_flag=True, help="List archived organizations too.")
def list_command(archived: bool) -> None:
    """The organizations: slug, name, time zone, language, connectors, admins and state, tab-separated."""
    for item in organizations.listing(archived=archived):
        o = item.organization
        state = f"archived {o.archived_at:%Y-%m-%d %H:%M} UTC" if o.archived_at else "active"
        click.echo(f"{o.slug}\t{o.name}\t{o.timezone}\t{o.language}\t{item.connectors} connectors\t"
                   f"{item.admins} admins\t{state}")


@orgs_cli.command("archive")
@click.argument("slug")
def archive_command(slug: str) -> None:
    """Archive SLUG: no more syncing or alerts, its open alerts resolved without notifications."""
    try:
        resolved = organizations.archive(_organization(slug))
    except organizations.NotApplicable as not_applicable:
        raise click.ClickException(str(not_applicable)) from None
    click.echo(f"Archived {slug}; {resolved} open alert(s) resolved without notifications")


@orgs_cli.command("restore")
@click.argument("slug")
def restore_command(slug: str) -> None:
    """Restore the archived organization SLUG: it is synced and raises alerts again."""
    try:
        organizations.restore(_organization(slug))
    except organizations.NotApplicable as not_applicable:
        raise click.ClickException(str(not_applicable)) from None
    click.echo(f"Restored {slug}")
