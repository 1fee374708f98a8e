"""When a notification is emailed: queued at its creation, due after its person's delay, claimed before sending.

`queue_for` runs in the writer's transaction, for every announced notification. Only a person whose choice for
the event is `immediate` gets a row (the digest reads alerts, not these rows); its Message-ID is fixed now, so a
send repeated after a crash carries the same one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from dashboard.extensions import db
from dashboard.mail.compose import mail_domain, message_id
from dashboard.models import EmailMessage, Notification, User
from dashboard.queues import deliver_after_commit
from dashboard.vocabulary import DeliveryStatus, EmailChoice, EmailKind, NotificationEvent

_CHOICES = "email_choices"


@dataclass(frozen=True)
class Choice:
    """A person's email choices, as read once per transaction."""

    raised: str
    resolved: str
    delay_minutes: int

    def for_event(self, event: str) -> str:
        """`resolved` follows the resolution choice; every other event (raised, reminded, ...) the raise's."""
        return self.resolved if event == NotificationEvent.RESOLVED else self.raised


def choice_of(user_id: int) -> Choice:
    """The person's choice, cached in the session until its transaction ends (an evaluation notifies the same
    admins of many alerts). The person is read through the session: the writer has loaded them already in this
    transaction (`writer.notify`), so that costs no query."""
    cache: dict[int, Choice] = db.session.info.setdefault(_CHOICES, {})
    if user_id not in cache:
        user = db.session.get(User, user_id)
        assert user is not None
        cache[user_id] = Choice(user.email_raised, user.email_resolved, user.email_delay_minutes)
    return cache[user_id]


def queue_for(notification: Notification, now: datetime) -> None:
    """Plan the email of an announced notification, in the caller's transaction (the writer's)."""
    choice = choice_of(notification.user_id)
    if choice.for_event(notification.event) != EmailChoice.IMMEDIATE:
        return
    config = current_app.config
    row_id = db.session.execute(sa.insert(EmailMessage.__table__).values(  # a plain row: no object, no flush
        user_id=notification.user_id, kind=EmailKind.NOTIFICATION, notification_id=notification.id,
        message_id=message_id(mail_domain(config["MAIL_FROM"], config["PUBLIC_BASE_URL"]), notification.user_id,
                              notification.event, alert_id=notification.alert_id, notification_id=notification.id),
        status=DeliveryStatus.PENDING, due_at=now + timedelta(minutes=choice.delay_minutes), created_at=now)
    ).inserted_primary_key[0]
    if choice.delay_minutes == 0:
        deliver_after_commit("jobs.email.send_email", row_id, job_id=send_job_id(row_id, 0))


def send_job_id(row_id: int, attempts: int) -> str:
    """One RQ job per row and attempt: the scan sees a job still queued, and a retry is a new job."""
    return f"email-{row_id}-{attempts}"


@sa.event.listens_for(Session, "after_commit")
@sa.event.listens_for(Session, "after_rollback")
def _forget_choices(session: Session) -> None:
    """A choice changed by the person is read afresh by the next transaction."""
    session.info.pop(_CHOICES, None)
