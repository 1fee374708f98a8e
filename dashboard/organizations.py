"""Organizations: create, edit, archive and restore them (the pages' and `flask orgs`' one way in).

Each action checks what it is given, changes the organization and writes its one audit entry in a single
write transaction. The checks are plain functions (`problems`, `suggest_slug`) so the form and the command
line refuse the same things with the same words.

Archiving keeps everything (records, alerts, the log): the organization is no longer synced, the engine
raises nothing for it, and its open alerts resolve at once telling nobody, neither people nor webhooks.
Restoring clears the flag; nothing is announced again.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cache
from zoneinfo import available_timezones

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from dashboard import audit
from dashboard.formatting import single_line
from dashboard.alerts import writer
from dashboard.alerts.engine import recount_platform
from dashboard.database import write_transaction
from dashboard.extensions import db
from dashboard.formatting import DEFAULT_TIME_ZONE
from dashboard.live.publish import organization_channel, queue_event
from dashboard.models import Alert, Connector, Membership, Organization, utcnow
from dashboard.vocabulary import LANGUAGES, AlertStatus, AuditAction, LiveEvent

NAME_MAX = 200
SLUG_MIN, SLUG_MAX = 2, 64
DEFAULT_LANGUAGE = "nb"
ARCHIVED_REASON = "organization archived"
"""What an alert resolved by the archiving says in its timeline."""

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_TRANSLITERATED = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "Æ": "ae", "Ø": "o", "Å": "a", "ß": "ss"})


class Problem(Enum):
    """Why a value is refused; `message` says it to the administrator."""

    NAME_MISSING = "name_missing"
    NAME_TOO_LONG = "name_too_long"
    SLUG_FORM = "slug_form"
    SLUG_TAKEN = "slug_taken"
    TIMEZONE_UNKNOWN = "timezone_unknown"
    LANGUAGE_UNKNOWN = "language_unknown"


class Refused(ValueError):
    """The action was refused and nothing changed: `problems` maps each field to why."""

    def __init__(self, problems: dict[str, Problem]) -> None:
        self.problems = problems
        super().__init__(" ".join(message(p) for p in problems.values()))


class NotApplicable(ValueError):
    """Archiving an archived organization or restoring an active one: nothing to do, nothing written."""


# Rules (plain functions) -----------------------------------------------------------------------------------

@cache
def time_zones() -> tuple[str, ...]:
    """The IANA time zone names this system knows, sorted: the choices, and what is accepted."""
    return tuple(sorted(available_timezones()))


def suggest_slug(name: str) -> str:
    """A slug made from a name: "Blindeforbundet Øst" → "blindeforbundet-ost" ("" when nothing usable is left)."""
    ascii_name = unicodedata.normalize("NFKD", name.translate(_TRANSLITERATED)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:SLUG_MAX].rstrip("-")


def problems(*, name: str, timezone: str, language: str, slug: str | None = None) -> dict[str, Problem]:
    """What is wrong with the values, by field (empty: nothing). `slug` None: not being set (an edit)."""
    found: dict[str, Problem] = {}
    if not name.strip():
        found["name"] = Problem.NAME_MISSING
    elif len(name.strip()) > NAME_MAX:
        found["name"] = Problem.NAME_TOO_LONG
    if slug is not None and not (SLUG_MIN <= len(slug) <= SLUG_MAX and _SLUG.fullmatch(slug)):
        found["slug"] = Problem.SLUG_FORM
    if timezone not in time_zones():
        found["timezone"] = Problem.TIMEZONE_UNKNOWN
    if language not in LANGUAGES:
        found["language"] = Problem.LANGUAGE_UNKNOWN
    return found


def message(problem: Problem) -> str:
    """The refusal as the form and the command line say it."""
    return {
        Problem.NAME_MISSING: _("Enter the organization's name."),
        Problem.NAME_TOO_LONG: _("Keep the name to %(max)d characters or fewer.", max=NAME_MAX),
        Problem.SLUG_FORM: _("Enter a slug of %(min)d to %(max)d lowercase letters (a to z), digits and hyphens, "
                             "starting and ending with a letter or a digit, such as “blindeforbundet”.",
                             min=SLUG_MIN, max=SLUG_MAX),
        Problem.SLUG_TAKEN: _("Another organization has this slug already (archived ones count too): choose "
                              "another."),
        Problem.TIMEZONE_UNKNOWN: _("Choose a time zone from the list, such as Europe/Oslo."),
        Problem.LANGUAGE_UNKNOWN: _("Choose Norsk bokmål or English."),
    }[problem]


# Reading -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listed:
    """An organization as the management list shows it."""

    organization: Organization
    connectors: int
    """Connectors not removed."""
    admins: int


def listing(*, archived: bool = False) -> list[Listed]:
    """The organizations by name, with their connectors and admins counted; archived ones only if asked."""
    org = Organization.id
    connectors = sa.select(sa.func.count()).where(Connector.organization_id == org, Connector.removed_at.is_(None))
    admins = sa.select(sa.func.count()).where(Membership.organization_id == org)
    query = sa.select(Organization, connectors.scalar_subquery(), admins.scalar_subquery()) \
        .order_by(Organization.name, Organization.id)
    if not archived:
        query = query.where(Organization.archived_at.is_(None))
    return [Listed(o, c, a) for o, c, a in db.session.execute(query).all()]


def find(slug: str) -> Organization | None:
    return db.session.scalar(sa.select(Organization).where(Organization.slug == slug))


def slug_taken(slug: str) -> bool:
    return db.session.scalar(sa.select(sa.func.count()).where(Organization.slug == slug)) > 0


# Actions -------------------------------------------------------------------------------------------------

def create(*, slug: str, name: str, timezone: str = DEFAULT_TIME_ZONE, language: str = DEFAULT_LANGUAGE
           ) -> Organization:
    """Create an organization (no connector, no admin yet). Raises `Refused`, saving nothing."""
    name = single_line(name)
    found = problems(name=name, slug=slug, timezone=timezone, language=language)
    if "slug" not in found and slug_taken(slug):
        found["slug"] = Problem.SLUG_TAKEN
    if found:
        raise Refused(found)
    try:
        with write_transaction():
            organization = Organization(slug=slug, name=name, timezone=timezone, language=language)
            db.session.add(organization)
            db.session.flush()
            audit.record(AuditAction.ORGANIZATION_CREATED, organization_id=organization.id,
                         target=_target(organization), detail=_fields(organization) | {"slug": slug})
    except IntegrityError:  # another administrator took the slug between the check and the insert
        raise Refused({"slug": Problem.SLUG_TAKEN}) from None
    return organization


def edit(organization: Organization, *, name: str, timezone: str, language: str) -> bool:
    """Change the name, time zone and language (the slug never changes: it is in every link and in the API).
    Returns False when nothing changed (and nothing is written). Raises `Refused`, saving nothing."""
    name = single_line(name)
    found = problems(name=name, timezone=timezone, language=language)
    if found:
        raise Refused(found)
    with write_transaction():
        organization = writer.lock_organization(organization.id)
        before = _fields(organization)
        organization.name, organization.timezone, organization.language = name, timezone, language
        changed = audit.changes(before, _fields(organization))
        if changed:
            audit.record(AuditAction.ORGANIZATION_CHANGED, organization_id=organization.id,
                         target=_target(organization), detail=changed)
    return bool(changed)


def archive(organization: Organization, now: datetime | None = None) -> int:
    """Archive the organization and resolve its open alerts telling nobody; returns how many were resolved.
    Raises `NotApplicable` when it is archived already."""
    now = now or utcnow()
    with write_transaction():
        organization = writer.lock_organization(organization.id)
        if organization.archived_at is not None:
            raise NotApplicable(_("%(name)s is archived already.", name=organization.name))
        organization.archived_at = now
        open_alerts = db.session.scalars(
            sa.select(Alert).where(Alert.organization_id == organization.id, Alert.status == AlertStatus.OPEN)
            .order_by(Alert.id)).all()
        for alert in open_alerts:
            writer.close(alert, now, quietly=ARCHIVED_REASON)
            queue_event(organization_channel(organization.id), LiveEvent.ALERT_CHANGED, {"alert_id": alert.id})
        if open_alerts:
            recount_platform(now)
        audit.record(AuditAction.ORGANIZATION_ARCHIVED, organization_id=organization.id, at=now,
                     target=_target(organization), detail={"resolved_alerts": len(open_alerts)})
    return len(open_alerts)


def restore(organization: Organization) -> None:
    """Make an archived organization active again: it is synced and evaluated from now on. Batches that came
    while it was archived stay evaluated without rules, so nothing is announced again. Raises `NotApplicable`
    when it is not archived."""
    with write_transaction():
        organization = writer.lock_organization(organization.id)
        if organization.archived_at is None:
            raise NotApplicable(_("%(name)s is not archived.", name=organization.name))
        archived_at = organization.archived_at
        organization.archived_at = None
        audit.record(AuditAction.ORGANIZATION_RESTORED, organization_id=organization.id,
                     target=_target(organization), detail={"archived_at": archived_at.isoformat()})


def _fields(organization: Organization) -> dict[str, str]:
    return {"name": organization.name, "timezone": organization.timezone, "language": organization.language}


def _target(organization: Organization) -> audit.Target:
    return ("organization", organization.id, organization.name)
