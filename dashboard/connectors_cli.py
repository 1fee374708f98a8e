"""`flask connectors`: connectors from the command line (the connector pages' twins)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from dashboard.extensions import db
from dashboard.models import Connector, Organization
from dashboard.sync import actions
from dashboard.sync.connectors import registry, sandbox

connectors_cli = AppGroup("connectors", help="Add, list, enable, disable and remove connectors; set sandbox scenarios.")


def _organization(org_slug: str) -> Organization:
    org = db.session.scalar(sa.select(Organization).where(Organization.slug == org_slug))
    if org is None:
        raise click.ClickException(f"no organization with slug {org_slug!r}")
    return org


def _connector(org_slug: str, connector_id: int | None) -> Connector:
    """The organization's connector of this id, or its first one; never a removed one."""
    org = _organization(org_slug)
    query = (sa.select(Connector).where(Connector.organization_id == org.id, Connector.removed_at.is_(None))
             .order_by(Connector.id))
    if connector_id is not None:
        query = query.where(Connector.id == connector_id)
    connector = db.session.scalars(query).first()
    if connector is None:
        raise click.ClickException(f"{org_slug} has no such connector")
    return connector


@connectors_cli.command("add")
@click.argument("org_slug")
@click.option("--provider", "provider_name", required=True,
              type=click.Choice(list(registry.PROVIDERS)), help="A registered provider.")
@click.option("--name", required=True, help="What the organization calls it, such as \"Tripletex\".")
def add_connector_command(org_slug: str, provider_name: str, name: str) -> None:
    """Add a disabled connector to ORG_SLUG; set its settings and secret on the status screen, then enable it."""
    org = _organization(org_slug)
    connector = _act(actions.add_connector, org, provider_name, name)
    click.echo(f"Added connector #{connector.id} ({provider_name}) to {org_slug}, disabled: set its settings and "
               f"secret at /orgs/{org_slug}/integration, then enable it")


@connectors_cli.command("list")
def list_connectors() -> None:
    """Every connector (removed ones too, marked) with its organization, provider, state and what the status screen
    shows of its settings."""
    rows = db.session.execute(
        sa.select(Organization.slug, Connector).join(Connector, Connector.organization_id == Organization.id)
        .order_by(Organization.slug, Connector.id)
    ).all()
    for slug, c in rows:
        provider = registry.provider(c.provider)
        state = "removed" if c.removed_at else "enabled" if c.enabled else "disabled"
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
    actions.configure_connector(connector.organization, connector.id, None, enabled=connector.enabled,
                                settings=settings)
    click.echo(f"{org_slug} connector #{connector.id}: {settings}")


@connectors_cli.command("enable")
@click.argument("org_slug")
@click.option("--connector", "connector_id", type=int, help="Connector id (default: the organization's first).")
def enable_connector(org_slug: str, connector_id: int | None) -> None:
    """Enable a connector, so it is synced again (at once, when this service pushes its records)."""
    connector = _connector(org_slug, connector_id)
    _act(actions.enable_connector, connector.organization, connector.id)
    click.echo(f"{org_slug} connector #{connector.id} ({connector.name}) is enabled")


@connectors_cli.command("disable")
@click.argument("org_slug")
@click.option("--connector", "connector_id", type=int, help="Connector id (default: the organization's first).")
def disable_connector(org_slug: str, connector_id: int | None) -> None:
    """Disable a connector: it is not synced and raises no stale-sync alert."""
    connector = _connector(org_slug, connector_id)
    _act(actions.disable_connector, connector.organization, connector.id)
    click.echo(f"{org_slug} connector #{connector.id} ({connector.name}) is disabled")


@connectors_cli.command("remove")
@click.argument("org_slug")
@click.option("--connector", "connector_id", type=int, required=True,
              help="Connector id (see `flask connectors list`); required, as removing cannot be undone.")
def remove_connector(org_slug: str, connector_id: int) -> None:
    """Remove a connector: it is never synced again and is hidden from lists; its records and sync log stay."""
    connector = _connector(org_slug, connector_id)
    _act(actions.remove_connector, connector.organization, connector.id)
    click.echo(f"{org_slug} connector #{connector.id} ({connector.name}) is removed; its records and sync log stay")


def _act(action: Callable[..., Connector], *args: Any) -> Connector:
    """Run a connector action as nobody (the command line); a refusal is the command's error."""
    try:
        return action(*args)
    except actions.ActionRefused as refused:
        raise click.ClickException(str(refused)) from None
