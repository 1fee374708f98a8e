"""What a notification email says: subject, threading headers, plain text and HTML, from templates/email/.

The pure parts (`message_id`, `subject`, `mail_domain`) take plain values; `notification_email` reads the rows it
needs and renders with the app's Jinja environment (jobs have no request: no context processors, no `current_user`).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from dashboard.alerts.content import alert_link, remedy
from dashboard.alerts.titles import alert_title, notification_title, renderable
from dashboard.extensions import db
from dashboard.formatting import DEFAULT_TIME_ZONE, localtime, money, single_line
from dashboard.i18n import current_locale, language_for
from dashboard.mail.links import preferences_url, public_url, unsubscribe_url
from dashboard.models import Alert, EmailMessage as EmailRow, Notification, Organization, User
from dashboard.sync.errors import describe as describe_error
from dashboard.vocabulary import NotificationEvent

THREAD_STARTERS = (NotificationEvent.RAISED, NotificationEvent.FLAPPING)
"""The events whose email starts an alert's thread for a person; the others reply to it."""


# Pure parts -------------------------------------------------------------------------------------------------

def mail_domain(mail_from: str, public_base_url: str) -> str:
    """The right-hand side of our Message-IDs: the sender's domain, else the public host."""
    address = parseaddr(mail_from)[1]
    if "@" in address:
        return address.rsplit("@", 1)[1].strip().lower() or "localhost"
    return urlsplit(public_base_url).hostname or "localhost"


def message_id(domain: str, user_id: int, event: str, *, alert_id: int | None = None,
               notification_id: int | None = None, token: str | None = None) -> str:
    """`<alert-7.raised.u3.<random>@domain>`: readable (which alert, event, person), unique across databases
    (the random part: a reset development database must not reuse ids that mail clients have seen)."""
    about = f"alert-{alert_id}" if alert_id is not None else f"notification-{notification_id}"
    return f"<{about}.{event}.u{user_id}.{token or secrets.token_hex(6)}@{domain}>"


def fallback_thread_id(domain: str, alert_id: int, user_id: int) -> str:
    """The raise's id when the person got no raise email (their choice then was not `immediate`)."""
    return f"<alert-{alert_id}.raised.u{user_id}@{domain}>"


def subject(event: str, title: str, raise_title: str | None = None) -> str:
    """The subject line: the raise's title, and for the later events of an alert a word saying which."""
    if event == NotificationEvent.RESOLVED:
        return _("Resolved: %(title)s", title=raise_title or title)
    if event == NotificationEvent.REMINDED:
        return _("Reminder: %(title)s", title=raise_title or title)
    if event == NotificationEvent.ESCALATED:
        return _("Escalated, nobody has acknowledged it: %(title)s", title=raise_title or title)
    return title


# Composing --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Thread:
    """Where a message sits in its alert's thread for the person: the raise's Message-ID and title."""

    starter_id: str | None
    starter_title: str | None


def thread_of(notification: Notification, domain: str) -> Thread:
    """The raise email of the notification's alert for its person (None for a raise or a summary)."""
    if notification.alert_id is None or notification.event in THREAD_STARTERS:
        return Thread(None, None)
    row = db.session.execute(
        sa.select(EmailRow.message_id, Notification.title)
        .join(Notification, Notification.id == EmailRow.notification_id)
        .where(Notification.alert_id == notification.alert_id, Notification.user_id == notification.user_id,
               Notification.event.in_(THREAD_STARTERS))
        .order_by(Notification.id).limit(1)
    ).first()
    if row is not None:
        return Thread(row.message_id, row.title)
    title = db.session.scalar(
        sa.select(Notification.title).where(Notification.alert_id == notification.alert_id,
                                            Notification.user_id == notification.user_id,
                                            Notification.event.in_(THREAD_STARTERS)).limit(1))
    return Thread(fallback_thread_id(domain, notification.alert_id, notification.user_id), title)


def notification_email(row: EmailRow, notification: Notification, user: User, now: datetime) -> EmailMessage:
    """The email of `row`: headers, a plain-text body and its HTML alternative, in the person's language (their
    choice, else the organization's) and with the alert's figures as they are now."""
    config = current_app.config
    domain = mail_domain(config["MAIL_FROM"], config["PUBLIC_BASE_URL"])
    organization = db.session.get(Organization, notification.organization_id) if notification.organization_id \
        else None
    thread = thread_of(notification, domain)
    alert = notification.alert if notification.alert_id else None
    with force_locale(language_for(user, organization)):
        raise_title = alert_title(alert, problem=True) if alert is not None and renderable(alert) \
            else thread.starter_title
        shown = notification_title(notification)
        title = subject(notification.event, shown, raise_title)
        text, html = bodies(notification, organization, user, title, shown)
    message = EmailMessage()
    message["Subject"] = single_line(title)
    message["From"] = config["MAIL_FROM"]
    message["To"] = Address(display_name=single_line(user.name), addr_spec=user.email)
    message["Date"] = format_datetime(now.replace(tzinfo=timezone.utc))
    message["Message-ID"] = row.message_id
    if thread.starter_id:
        message["In-Reply-To"] = thread.starter_id
        message["References"] = thread.starter_id
    message["List-Unsubscribe"] = f"<{unsubscribe_url()}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def bodies(notification: Notification, organization: Organization | None, user: User,
           subject_line: str, title: str | None = None) -> tuple[str, str]:
    """The plain text and the HTML of a notification's email (`notification.alert` read as it is now), in the
    current locale; `title`: the notification's as shown now (its stored one if None)."""
    context = _context(notification, notification.alert, organization, user)
    context["title"] = title or notification.title
    context["subject"] = subject_line
    return _render("email/notification.txt", context), _render("email/notification.html", context)


def _context(notification: Notification, alert: Alert | None, organization: Organization | None,
             user: User) -> dict[str, Any]:
    zone = organization.timezone if organization else DEFAULT_TIME_ZONE

    def local(moment: datetime | None) -> dict[str, str] | None:
        """A moment in the organization's time zone, named, with its machine-readable form."""
        if moment is None:
            return None
        return {"text": f"{localtime(moment, organization)} ({zone})",
                "iso": moment.replace(tzinfo=timezone.utc).isoformat()}

    context: dict[str, Any] = {
        "event": notification.event, "user": user,
        "organization_name": organization.name if organization else _("All organizations (platform)"),
        "when": local(notification.created_at),
        "preferences_url": preferences_url(), "lang": current_locale(),
        "alert": None,
    }
    if alert is None or notification.event == NotificationEvent.SUMMARY:
        context["link"] = public_url(f"/notifications/{notification.id}")
        return context
    details = alert.details or {}
    stake = ", ".join(money(amount, currency) for currency, amount in sorted(
        (details.get("amount_at_stake") or {}).items()))
    context.update(
        alert=alert, affected=alert.affected_count, stake=stake or money(0),
        error_title=str(describe_error(alert.error_code).title) if alert.error_code else details.get("error_title"),
        hint=remedy(alert),
        opened=local(alert.opened_at), resolved=local(alert.resolved_at),
        link=public_url(details.get("link") or alert_link(alert)),
    )
    return context


def _render(name: str, context: dict[str, Any]) -> str:
    return current_app.jinja_env.get_template(name).render(**context)
