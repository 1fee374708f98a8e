"""Per-organization API tokens for the ingestion API.

Only the SHA-256 of a token is stored, so the plaintext is shown once, when it
is created. A token is 32 random bytes, so a plain hash (no salt, no slow KDF)
is enough, and looking a token up by its hash needs no constant-time compare.
The `dash_` prefix makes a leaked token recognizable to secret scanners.
"""
from __future__ import annotations

import hashlib
import secrets

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from dashboard.extensions import db
from dashboard.models import ApiToken, Organization

TOKEN_PREFIX = "dash_"
NAME_MAX_LENGTH = 100

tokens_cli = AppGroup("tokens", help="Manage ingestion API tokens.")


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def create_token(organization: Organization, name: str) -> str:
    """Add a token for the organization (the caller commits) and return its plaintext."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(organization_id=organization.id, name=name, token_hash=hash_token(plaintext)))
    db.session.flush()
    return plaintext


def find_token(plaintext: str) -> ApiToken | None:
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    return db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext)))


@tokens_cli.command("create")
@click.argument("org_slug")
@click.option("--name", required=True, help="What the token is for, such as the orchestrator's name.")
def create_token_command(org_slug: str, name: str) -> None:
    """Create an API token for the organization ORG_SLUG and print it once."""
    name = name.strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        raise click.ClickException(f"the name must be 1 to {NAME_MAX_LENGTH} characters")
    organization = db.session.scalar(sa.select(Organization).where(Organization.slug == org_slug))
    if organization is None:
        raise click.ClickException(f"no organization with slug {org_slug!r}")
    plaintext = create_token(organization, name)
    db.session.commit()
    click.echo(f"Created API token {name!r} for {org_slug}. Copy it now; it is not shown again:")
    click.echo(plaintext)
