"""What a person's daily digest says: their organizations' open alerts with their figures, and what changed.

A person whose raises go to the digest (`email_raised == digest`) reads the open alerts and those raised since
the last digest; one whose resolutions go to it reads those resolved since. An organization administrator reads
their organizations' alerts; a global administrator reads all, the platform's included.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import ngettext

from dashboard.alerts.content import alert_link
from dashboard.alerts.titles import alert_title
from dashboard.extensions import db
from dashboard.formatting import DEFAULT_TIME_ZONE, localtime, money, single_line
from dashboard.i18n import language_for
from dashboard.mail.compose import mail_domain
from dashboard.mail.links import preferences_url, public_url, unsubscribe_url
from dashboard.models import Alert, EmailMessage as EmailRow, Membership, Organization, User
from dashboard.vocabulary import AlertStatus, EmailChoice, EmailKind

MAX_LISTED = 50
"""Alerts listed per section; the rest are counted, and the dashboard lists them all."""
FIRST_DIGEST_LOOKBACK = timedelta(days=1)
"""What changed is told since the previous digest; a person's first digest looks back this far."""


def takes_digest(user: User) -> bool:
    return EmailChoice.DIGEST in (user.email_raised, user.email_resolved)


def time_zone_of(user: User) -> str:
    """The person's local time zone: their (first) organization's; Europe/Oslo for one with none."""
    zone = db.session.scalar(
        sa.select(Organization.timezone).join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user.id).order_by(Organization.id).limit(1))
    return zone or DEFAULT_TIME_ZONE


def new_message_id(user: User, key: str) -> str:
    """`<digest-2026-11-30.u3.<random>@domain>`: fixed when the digest is claimed, so a repeat carries it too."""
    config = current_app.config
    domain = mail_domain(config["MAIL_FROM"], config["PUBLIC_BASE_URL"])
    return f"<{key.replace(':', '-')}.u{user.id}.{secrets.token_hex(6)}@{domain}>"


@dataclass(frozen=True)
class DigestItem:
    """One alert as the digest lists it, its times in the person's zone."""

    alert: Alert
    organization: str
    title: str
    records: int
    at_stake: str
    opened: str
    resolved: str
    acknowledged: str
    """Who acknowledged it and when, in words; empty when nobody has."""
    link: str


@dataclass(frozen=True)
class Section:
    items: list[DigestItem]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.items)


@dataclass(frozen=True)
class Digest:
    since: datetime
    zone: str
    open: Section | None
    """None when the person's raises do not go to the digest."""
    raised: Section | None
    resolved: Section | None
    """None when the person's resolutions do not go to the digest."""
    listed: list[Alert]
    """Every alert the digest names, once."""

    @property
    def is_empty(self) -> bool:
        return not any(section and section.total for section in (self.open, self.raised, self.resolved))


def gather(user: User, row: EmailRow, zone: str) -> Digest:
    """The digest of `row` (its person's): open alerts now, and what changed from the previous digest to it, in
    the person's language."""
    previous = db.session.scalar(
        sa.select(sa.func.max(EmailRow.created_at))
        .where(EmailRow.user_id == user.id, EmailRow.kind == EmailKind.DIGEST, EmailRow.id != row.id,
               EmailRow.created_at < row.created_at))
    since, until = previous or row.created_at - FIRST_DIGEST_LOOKBACK, row.created_at
    with force_locale(language_for(user)):  # the items' titles, amounts and times, as the person reads them
        scope = _scope(user)
        names = dict(db.session.execute(sa.select(Organization.id, Organization.name)).tuples().all())
        raises, resolutions = user.email_raised == EmailChoice.DIGEST, user.email_resolved == EmailChoice.DIGEST
        sections: dict[str, Section | None] = {"open": None, "raised": None, "resolved": None}
        if raises:
            sections["open"] = _section(scope & (Alert.status == AlertStatus.OPEN), Alert.opened_at, names, zone)
            sections["raised"] = _section(scope & (Alert.opened_at > since) & (Alert.opened_at <= until),
                                          Alert.opened_at, names, zone)
        if resolutions:
            sections["resolved"] = _section(
                scope & (Alert.status == AlertStatus.RESOLVED) & (Alert.resolved_at > since)
                & (Alert.resolved_at <= until), Alert.resolved_at, names, zone)
        listed = {item.alert.id: item.alert for section in sections.values() if section for item in section.items}
    return Digest(since=since, zone=zone, listed=list(listed.values()), **sections)


def _scope(user: User) -> sa.ColumnElement[bool]:
    if user.is_global_admin:
        return sa.true()
    return Alert.organization_id.in_(sa.select(Membership.organization_id).where(Membership.user_id == user.id))


def _section(where: sa.ColumnElement[bool], newest: Any, names: dict[int, str], zone: str) -> Section:
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Alert).where(where)) or 0
    alerts = db.session.scalars(
        sa.select(Alert).where(where).order_by(newest.desc(), Alert.id.desc()).limit(MAX_LISTED)).all()
    return Section(items=[_item(alert, names, zone) for alert in alerts], total=total)


def _item(alert: Alert, names: dict[int, str], zone: str) -> DigestItem:
    details = alert.details or {}
    amounts = details.get("waiting_amounts") if alert.status == AlertStatus.OPEN else None
    amounts = amounts if amounts is not None else details.get("amount_at_stake") or {}
    at_stake = ", ".join(money(amount, currency) for currency, amount in sorted(amounts.items()))
    where = _ZonedPlace(zone)
    acknowledged = ""
    if alert.acknowledged_at is not None:
        who = alert.acknowledged_by.name if alert.acknowledged_by else _("someone no longer here")
        acknowledged = _("by %(name)s at %(time)s", name=who, time=localtime(alert.acknowledged_at, where))
    return DigestItem(
        alert=alert,
        organization=names.get(alert.organization_id, "") if alert.organization_id else _("Platform"),
        title=alert_title(alert), records=alert.affected_count, at_stake=at_stake or money(0),
        opened=localtime(alert.opened_at, where), resolved=localtime(alert.resolved_at, where),
        acknowledged=acknowledged, link=public_url(details.get("link") or alert_link(alert)),
    )


@dataclass(frozen=True)
class _ZonedPlace:
    """What `localtime` reads from an organization: its time zone."""

    timezone: str


def digest_email(row: EmailRow, user: User, digest: Digest, now: datetime) -> EmailMessage:
    """The digest's email: headers, a plain-text body and its HTML alternative, in the person's language."""
    config = current_app.config
    lang = language_for(user)
    with force_locale(lang):
        subject = _subject(digest, localtime(row.created_at, _ZonedPlace(digest.zone))[:10])
        context = {"digest": digest, "user": user, "subject": subject, "lang": lang,
                   "since": localtime(digest.since, _ZonedPlace(digest.zone)),
                   "dashboard_url": public_url("/"), "preferences_url": preferences_url()}
        text = current_app.jinja_env.get_template("email/digest.txt").render(**context)
        html = current_app.jinja_env.get_template("email/digest.html").render(**context)
    message = EmailMessage()
    message["Subject"] = single_line(subject)
    message["From"] = config["MAIL_FROM"]
    message["To"] = Address(display_name=single_line(user.name), addr_spec=user.email)
    message["Date"] = format_datetime(now.replace(tzinfo=timezone.utc))
    message["Message-ID"] = row.message_id
    message["List-Unsubscribe"] = f"<{unsubscribe_url()}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _subject(digest: Digest, day: str) -> str:
    parts = []
    if digest.open is not None:
        parts.append(ngettext("%(num)d open alert", "%(num)d open alerts", digest.open.total))
    if digest.resolved is not None:
        parts.append(ngettext("%(num)d resolved", "%(num)d resolved", digest.resolved.total))
    return _("Sync alerts digest, %(day)s: %(counts)s", day=day, counts=", ".join(parts))
