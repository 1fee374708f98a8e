"""Small factories that build the world tests need."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from dashboard.extensions import db
from dashboard.models import Connector, Membership, Organization, PlatformSettings, SyncRecord, User, utcnow

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def org(slug: str | None = None, **fields) -> Organization:  # type: ignore[no-untyped-def]
    n = next(_seq)
    organization = Organization(slug=slug or f"org-{n}", name=fields.pop("name", f"Organization {n}"), **fields)
    db.session.add(organization)
    db.session.flush()
    return organization


def user(email: str | None = None, orgs: tuple[Organization, ...] = (), global_admin: bool = False) -> User:
    n = next(_seq)
    person = User(email=email or f"user{n}@example.org", name=f"User {n}", is_global_admin=global_admin)
    person.set_password(PASSWORD)
    db.session.add(person)
    db.session.flush()
    for o in orgs:
        db.session.add(Membership(user_id=person.id, organization_id=o.id))
    db.session.flush()
    return person


def connector(organization: Organization, **fields) -> Connector:  # type: ignore[no-untyped-def]
    fields.setdefault("settings", {"scenario": "healthy"})
    c = Connector(organization_id=organization.id, name=fields.pop("name", "Sandbox"),
                  provider=fields.pop("provider", "sandbox"), **fields)
    db.session.add(c)
    db.session.flush()
    return c


def record(conn: Connector, approved_at: datetime | None = None, **fields) -> SyncRecord:  # type: ignore[no-untyped-def]
    n = next(_seq)
    r = SyncRecord(
        organization_id=conn.organization_id, connector_id=conn.id,
        record_type=fields.pop("record_type", "expense_claim"), source_ref=fields.pop("source_ref", f"ref-{n}"),
        volunteer=fields.pop("volunteer", "Kari Nordmann"), amount_minor=fields.pop("amount_minor", 125_00),
        currency=fields.pop("currency", "NOK"), approved_at=approved_at or utcnow() - timedelta(hours=1),
        **fields,
    )
    db.session.add(r)
    db.session.flush()
    return r


def platform(grouping_wait_seconds: int = 0, incident_min_organizations: int = 2) -> PlatformSettings:
    settings = db.session.get(PlatformSettings, 1)
    if settings is None:
        settings = PlatformSettings(id=1)
        db.session.add(settings)
    settings.grouping_wait_seconds = grouping_wait_seconds
    settings.incident_min_organizations = incident_min_organizations
    db.session.flush()
    return settings


@dataclass
class World:
    org_a: Organization
    org_b: Organization
    admin_a: User
    admin_b: User
    global_admin: User
    connector_a: Connector
    connector_b: Connector


def two_org_world() -> World:
    platform()
    a, b = org("org-a", name="Organization A"), org("org-b", name="Organization B")
    w = World(
        org_a=a, org_b=b,
        admin_a=user("admin-a@example.org", orgs=(a,)), admin_b=user("admin-b@example.org", orgs=(b,)),
        global_admin=user("global@example.org", global_admin=True),
        connector_a=connector(a), connector_b=connector(b),
    )
    db.session.commit()
    return w
