"""Demo data: four organizations, their admins, a global admin and a few hundred records each.

Two sync to the sandbox (whose scenarios `flask connectors scenario` switches), one to a local Tripletex fake
and one to a local Fiken fake, which `make run` starts beside the stack (`DEMO_FAKES`), so the demo exercises
the real adapters."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Connector, Membership, Organization, PlatformSettings, SyncRecord, User, utcnow
from dashboard.vocabulary import RecordStatus

DEMO_PASSWORD = "demo-password"
DEMO_TRIPLETEX_PORT = 5101
DEMO_FIKEN_PORT = 5102
DEMO_TRIPLETEX_EMPLOYEE_TOKEN = "fake-employee-token"
"""The employee token the Tripletex fake accepts (its consumer token is `fake-consumer-token`: `make run` sets
TRIPLETEX_CONSUMER_TOKEN to it)."""
DEMO_FIKEN_COMPANY = "fiken-demo-forening"
DEMO_FIKEN_TOKEN = "demo-fiken-personal-token"

VOLUNTEERS = [
    "Kari Nordmann", "Ola Hansen", "Ingrid Johansen", "Lars Olsen", "Sigrid Larsen", "Knut Andersen",
    "Astrid Pedersen", "Per Nilsen", "Solveig Kristiansen", "Bjørn Jensen", "Liv Karlsen", "Erik Berg",
    "Ragnhild Haugen", "Tor Hagen", "Marit Eriksen", "Nils Dahl", "Åse Solberg", "Jon Bakken",
]
VOLUNTEER_REFS = {name: f"vol-{1001 + n}" for n, name in enumerate(VOLUNTEERS)}
"""Each demo volunteer's platform reference (opaque, like a real platform's ids)."""
WITHOUT_VOLUNTEER_REF = 25
"""One record in this many has no volunteer reference (as if imported before the platform kept them), so the
screens show "at least N volunteers"."""
RECORD_TYPES = {
    "expense_claim": ("Utlegg", (150_00, 4_500_00)),
    "mileage_claim": ("Kjøregodtgjørelse", (80_00, 2_400_00)),
    "reimbursement_payment": ("Refusjon", (500_00, 12_000_00)),
}


@dataclass(frozen=True)
class DemoOrg:
    slug: str
    name: str
    admin_email: str
    scenario: dict
    """The connector's settings (a sandbox scenario, or a fake's address and accounts)."""
    records: int
    stale_records: int
    provider: str = "sandbox"
    connector_name: str = "Sandbox regnskap"
    secret: str | None = None


DEMO_ORGS = [
    DemoOrg("blindeforbundet", "Norges Blindeforbund", "admin@blindeforbundet.example",
            {"scenario": "invalid_vat_code", "record_type": "mileage_claim"}, 320, 0),
    DemoOrg("hlf", "Hørselshemmedes Landsforbund (HLF)", "admin@hlf.example",
            {"scenario": "mapping_missing", "share": 0.2, "seed": 7}, 280, 12),
    DemoOrg("folkehjelp", "Norsk Folkehjelp", "admin@folkehjelp.example",
            {"base_url": f"http://127.0.0.1:{DEMO_TRIPLETEX_PORT}/v2"}, 240, 0,
            provider="tripletex", connector_name="Tripletex", secret=DEMO_TRIPLETEX_EMPLOYEE_TOKEN),
    DemoOrg("nhf", "Norges Handikapforbund", "admin@nhf.example",
            {"base_url": f"http://127.0.0.1:{DEMO_FIKEN_PORT}/api/v2", "company_slug": DEMO_FIKEN_COMPANY,
             "account_expense_claim": "7140", "account_mileage_claim": "7140",
             "account_reimbursement_payment": "2910", "credit_account": "1920"}, 200, 0,
            provider="fiken", connector_name="Fiken", secret=DEMO_FIKEN_TOKEN),
]
GLOBAL_ADMIN = "global@platform.example"
DEMO_LANGUAGE = "nb"
"""The demo organizations are Norwegian: their admins read the interface in bokmål unless they choose English."""


def seed_demo(now: datetime | None = None) -> list[tuple[str, str]]:
    """Create the demo world unless it exists; return (login, password) pairs. Safe to run twice."""
    now = now or utcnow()
    rng = random.Random(2026)
    if db.session.get(PlatformSettings, 1) is None:
        db.session.add(PlatformSettings.defaults())
    logins: list[tuple[str, str]] = []
    for spec in DEMO_ORGS:
        org = db.session.scalar(sa.select(Organization).where(Organization.slug == spec.slug))
        if org is None:
            org = Organization(slug=spec.slug, name=spec.name, language=DEMO_LANGUAGE)
            db.session.add(org)
            db.session.flush()
            connector = Connector(organization_id=org.id, name=spec.connector_name, provider=spec.provider,
                                  enabled=True, settings=dict(spec.scenario), secret=spec.secret)
            db.session.add(connector)
            db.session.flush()
            db.session.add_all(_records(org, connector, spec, rng, now))
        _ensure_user(spec.admin_email, f"Admin {spec.name}", org=org)
        logins.append((spec.admin_email, DEMO_PASSWORD))
    _ensure_user(GLOBAL_ADMIN, "Global admin", global_admin=True)
    logins.append((GLOBAL_ADMIN, DEMO_PASSWORD))
    db.session.commit()
    return logins


def _ensure_user(email: str, name: str, org: Organization | None = None, global_admin: bool = False) -> User:
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name, is_global_admin=global_admin)
        user.set_password(DEMO_PASSWORD)
        db.session.add(user)
        db.session.flush()
    if org is not None and org.id not in user.organization_ids():
        db.session.add(Membership(user_id=user.id, organization_id=org.id, role="admin"))
        db.session.flush()
        db.session.refresh(user)
    return user


def _records(org: Organization, connector: Connector, spec: DemoOrg, rng: random.Random,
             now: datetime) -> list[SyncRecord]:
    records = []
    types = list(RECORD_TYPES)
    for i in range(spec.records):
        record_type = types[i % len(types)]
        label, (low, high) = RECORD_TYPES[record_type]
        stale = i < spec.stale_records
        approved = now - (timedelta(hours=rng.uniform(49, 96)) if stale else timedelta(minutes=rng.uniform(1, 600)))
        volunteer = rng.choice(VOLUNTEERS)
        records.append(SyncRecord(
            organization_id=org.id, connector_id=connector.id, record_type=record_type,
            source_ref=f"{spec.slug}-{i + 1:05d}", volunteer=volunteer,
            volunteer_ref=(None if i % WITHOUT_VOLUNTEER_REF == WITHOUT_VOLUNTEER_REF - 1
                           else VOLUNTEER_REFS[volunteer]),
            description=f"{label} {i + 1}", amount_minor=rng.randrange(low, high, 50), currency="NOK",
            approved_at=approved, status=RecordStatus.PENDING, next_attempt_at=None,
        ))
    return records


def add_demo_records(per_org: int = 3, now: datetime | None = None) -> int:
    """A few new approved records for every demo organization; returns how many."""
    now = now or utcnow()
    rng = random.Random()
    added = 0
    for spec in DEMO_ORGS:
        org = db.session.scalar(sa.select(Organization).where(Organization.slug == spec.slug))
        connector = org.connectors[0] if org is not None and org.connectors else None
        if connector is None:
            continue
        count = db.session.scalar(sa.select(sa.func.count()).select_from(SyncRecord)
                                  .where(SyncRecord.connector_id == connector.id)) or 0
        for i in range(per_org):
            record_type = rng.choice(list(RECORD_TYPES))
            label, (low, high) = RECORD_TYPES[record_type]
            volunteer = rng.choice(VOLUNTEERS)
            db.session.add(SyncRecord(
                organization_id=org.id, connector_id=connector.id, record_type=record_type,
                source_ref=f"{spec.slug}-{count + i + 1:05d}", volunteer=volunteer,
                volunteer_ref=None if rng.randrange(WITHOUT_VOLUNTEER_REF) == 0 else VOLUNTEER_REFS[volunteer],
                description=f"{label} {count + i + 1}", amount_minor=rng.randrange(low, high, 50),
                currency="NOK", approved_at=now, status=RecordStatus.PENDING,
            ))
            added += 1
    db.session.commit()
    return added
