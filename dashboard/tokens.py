"""Per-organization API tokens for the ingestion API: create, list, revoke, and authenticate.

Only the SHA-256 of a token is stored, so the plaintext is shown once, when it
is created. A token is 32 random bytes, so a plain hash (no salt, no slow KDF)
is enough, and looking a token up by its hash needs no constant-time compare.
The `dash_` prefix makes a leaked token recognizable to secret scanners.

A token may expire (`expires_at`) and may be revoked (`revoked_at`); either way
the API answers 401 to it, and it stays listed so its use can be traced. The
settings page and the `flask tokens` commands both go through these functions,
which record each creation and revocation in the organization's audit log (the
signed-in user as the actor; none from the command line).
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import click
import sqlalchemy as sa
from flask.cli import AppGroup
from flask_babel import lazy_gettext as _l

from dashboard import audit
from dashboard.extensions import db
from dashboard.models import ApiToken, Organization, utcnow
from dashboard.vocabulary import AuditAction

TOKEN_PREFIX = "dash_"
NAME_MAX_LENGTH = 100
MAX_EXPIRY_DAYS = 3650

tokens_cli = AppGroup("tokens", help="Manage ingestion API tokens.")


class TokenStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


STATUS_LABELS = {
    TokenStatus.ACTIVE: _l("Active"),
    TokenStatus.EXPIRED: _l("Expired"),
    TokenStatus.REVOKED: _l("Revoked"),
}


@dataclass(frozen=True)
class TokenListing:
    """What may be shown of a token: never its plaintext or its hash."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    status: TokenStatus

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[self.status])


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def create_token(organization: Organization, name: str, expires_in_days: int | None = None) -> str:
    """Add a token for the organization (the caller commits) and return its plaintext."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days is not None else None
    token = ApiToken(organization_id=organization.id, name=name, token_hash=hash_token(plaintext),
                     created_at=now, expires_at=expires_at)
    db.session.add(token)
    db.session.flush()
    audit.record(AuditAction.TOKEN_CREATED, organization_id=organization.id, target=("token", token.id, name),
                 detail={"expires_at": expires_at.isoformat() + "Z" if expires_at else None}, at=now)
    return plaintext


def find_token(plaintext: str) -> ApiToken | None:
    """The token with this plaintext, usable or not."""
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    return db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext)))


def authenticate(plaintext: str, now: datetime | None = None) -> ApiToken | None:
    """The token with this plaintext if it may be used now: not revoked and not expired."""
    token = find_token(plaintext)
    if token is None or not token.is_usable(now or utcnow()):
        return None
    return token


def token_status(token: ApiToken, now: datetime) -> TokenStatus:
    if token.revoked_at is not None:
        return TokenStatus.REVOKED
    if not token.is_usable(now):
        return TokenStatus.EXPIRED
    return TokenStatus.ACTIVE


def list_tokens(organization_id: int, now: datetime | None = None) -> list[TokenListing]:
    """The organization's tokens, oldest first, as they may be shown."""
    now = now or utcnow()
    tokens = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.organization_id == organization_id).order_by(ApiToken.created_at, ApiToken.id)
    )
    return [TokenListing(id=t.id, name=t.name, created_at=t.created_at, last_used_at=t.last_used_at,
                         expires_at=t.expires_at, revoked_at=t.revoked_at, status=token_status(t, now))
            for t in tokens]


def revoke_token(token: ApiToken, now: datetime | None = None) -> bool:
    """Revoke the token (the caller commits); False when it was revoked already, which changes nothing."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = now or utcnow()
    audit.record(AuditAction.TOKEN_REVOKED, organization_id=token.organization_id,
                 target=("token", token.id, token.name), at=token.revoked_at)
    return True


# ---- the `flask tokens` commands ----

def _organization(org_slug: str) -> Organization:
    organization = db.session.scalar(sa.select(Organization).where(Organization.slug == org_slug))
    if organization is None:
        raise click.ClickException(f"no organization with slug {org_slug!r}")
    return organization


def _utc(moment: datetime | None, empty: str) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else empty


@tokens_cli.command("create")
@click.argument("org_slug")
@click.option("--name", required=True, help="What the token is for, such as the orchestrator's name.")
@click.option("--expires-in-days", type=click.IntRange(1, MAX_EXPIRY_DAYS), default=None,
              help=f"Days until the token stops working (1 to {MAX_EXPIRY_DAYS}); without it, it never expires.")
def create_token_command(org_slug: str, name: str, expires_in_days: int | None) -> None:
    """Create an API token for the organization ORG_SLUG and print it once."""
    name = name.strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        raise click.ClickException(f"the name must be 1 to {NAME_MAX_LENGTH} characters")
    organization = _organization(org_slug)
    plaintext = create_token(organization, name, expires_in_days)
    db.session.commit()
    expiry = f", expiring in {expires_in_days} days" if expires_in_days is not None else ""
    click.echo(f"Created API token {name!r} for {org_slug}{expiry}. Copy it now; it is not shown again:")
    click.echo(plaintext)


@tokens_cli.command("list")
@click.argument("org_slug")
def list_tokens_command(org_slug: str) -> None:
    """List the API tokens of the organization ORG_SLUG (never their secrets); times are UTC."""
    listings = list_tokens(_organization(org_slug).id)
    db.session.rollback()
    if not listings:
        click.echo(f"{org_slug} has no API tokens.")
        return
    rows = [("ID", "NAME", "CREATED", "LAST USED", "EXPIRES", "STATUS")]
    rows += [(str(t.id), t.name, _utc(t.created_at, ""), _utc(t.last_used_at, "never"),
              _utc(t.expires_at, "never"),
              f"revoked {_utc(t.revoked_at, '')}" if t.status is TokenStatus.REVOKED else t.status.value)
             for t in listings]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@tokens_cli.command("revoke")
@click.argument("token_id", type=click.IntRange(1, 2**63 - 1))
def revoke_token_command(token_id: int) -> None:
    """Revoke the API token TOKEN_ID (see `flask tokens list`): the API refuses it from now on."""
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise click.ClickException(f"no API token with id {token_id}")
    slug = token.organization.slug
    if revoke_token(token):
        db.session.commit()
        click.echo(f"Revoked API token {token_id} ({token.name!r}) of {slug}.")
    else:
        click.echo(f"API token {token_id} ({token.name!r}) of {slug} was revoked already, "
                   f"at {_utc(token.revoked_at, '')}.")
