"""Sending a notification email exactly once: claim the row, send outside any transaction, record the result.

1. Claim: one conditional UPDATE (pending and due, or `sending` and stale: its worker died) makes the row
   `sending`; a second worker (or a re-run job) updates nothing and stops there. In the same short transaction
   the row is skipped if it is no longer wanted (read, acknowledged, snoozed, the person's choice changed),
   or its message is composed.
2. Send, with no transaction open (SMTP may take seconds).
3. Record: `sent` and an EMAILED alert event; or, when the server refused or could not be reached, back to
   `pending` after a backoff, `failed` after MAX_ATTEMPTS.

Only a crash between the server's acceptance and step 3 repeats a message, once the claim is stale, and then
with the same Message-ID (fixed on the row), which mail clients show once.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.message import EmailMessage as Message

import sqlalchemy as sa

from dashboard.alerts.writer import record_event
from dashboard.claims import claim, claimable
from dashboard.extensions import db
from dashboard.mail import transport
from dashboard.mail.compose import notification_email
from dashboard.mail.outbox import choice_of, send_job_id
from dashboard.models import Alert, EmailMessage, Notification, Organization, User
from dashboard.queues import deliver_now
from dashboard.vocabulary import AlertEventKind, DeliveryStatus, EmailChoice, EmailKind, NotificationEvent

log = logging.getLogger(__name__)

BACKOFF_SECONDS = (10, 30, 120, 600, 1800, 3600, 3600)
"""The wait after each failed attempt; the last one repeats."""
MAX_ATTEMPTS = 8
SCAN_LIMIT = 200
"""Rows queued per scan (a second): more wait for the next one."""


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt, after `attempts` failed ones (1 or more)."""
    return timedelta(seconds=BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1])


# The scan ---------------------------------------------------------------------------------------------------

def due_rows(now: datetime) -> list[tuple[int, int]]:
    """(id, attempts) of the notification emails to send now: pending and due, or claimed by a worker that died
    (digests have their own minute scan)."""
    return list(db.session.execute(
        sa.select(EmailMessage.id, EmailMessage.attempts).where(
            EmailMessage.kind == EmailKind.NOTIFICATION, claimable(EmailMessage, now),
        ).order_by(EmailMessage.due_at).limit(SCAN_LIMIT)
    ).tuples())


def queue_due(now: datetime) -> int:
    """Queue a send job for each due row whose job is not already waiting; how many were queued.

    The read's transaction ends before Redis is called.
    """
    from rq.job import Job, JobStatus

    from dashboard.extensions import redis_ext

    rows = due_rows(now)
    db.session.commit()
    if not rows:
        return 0
    job_ids = [send_job_id(row_id, attempts) for row_id, attempts in rows]
    waiting = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
    try:
        jobs = Job.fetch_many(job_ids, connection=redis_ext.client)
    except Exception:  # noqa: BLE001 - Redis is down: the next scan tries again
        log.warning("email scan: Redis is unreachable")
        return 0
    queued = 0
    for (row_id, _attempts), job_id, job in zip(rows, job_ids, jobs):
        if job is not None and job.get_status(refresh=False) in waiting:
            continue
        queued += deliver_now("jobs.email.send_email", row_id, job_id=job_id)
    return queued


# One send ---------------------------------------------------------------------------------------------------

def send(row_id: int, now: datetime) -> str:
    """Send one email row at most once; the row's status afterwards, or "" when another worker had it."""
    message = _claim_and_compose(row_id, now)
    if not isinstance(message, Message):
        return message
    try:
        transport.send(message)
    except (transport.TransportError, ValueError) as error:  # ValueError: a malformed SMTP_URL
        return _record_failure(row_id, str(error), now)
    _record_sent(row_id, now)
    return DeliveryStatus.SENT


def _claim_and_compose(row_id: int, now: datetime) -> Message | str:
    if not claim(EmailMessage, row_id, now, EmailMessage.kind == EmailKind.NOTIFICATION):
        db.session.commit()
        return ""
    row = db.session.get(EmailMessage, row_id, populate_existing=True)
    notification = db.session.get(Notification, row.notification_id)
    reason = unwanted(notification, now)
    if reason:
        row.status, row.last_error = DeliveryStatus.SKIPPED, reason
        db.session.commit()
        return DeliveryStatus.SKIPPED
    try:
        message = notification_email(row, notification, db.session.get(User, row.user_id), now)
    except ValueError as error:  # a message that cannot be written (a header it refuses): retrying cannot help
        row.status, row.last_error = DeliveryStatus.FAILED, f"could not be composed: {error}"[:500]
        db.session.commit()
        return DeliveryStatus.FAILED
    db.session.commit()
    return message


def unwanted(notification: Notification, now: datetime) -> str:
    """Why the email should no longer go (empty: it should).

    A resolution still goes for an acknowledged or snoozed alert: holding back is for what needs doing.
    """
    if notification.read_at is not None:
        return "read before it was due"
    if notification.gathered_into_id is not None:
        into = db.session.get(Notification, notification.gathered_into_id)
        if into is not None and into.read_at is not None:
            return "its summary was read before it was due"
    if choice_of(notification.user_id).for_event(notification.event) != EmailChoice.IMMEDIATE:
        return "the person's email choice is no longer immediate"
    organization = db.session.get(Organization, notification.organization_id) if notification.organization_id else None
    if organization is not None and organization.archived_at is not None:
        return "the organization was archived"
    alert = notification.alert
    if alert is None or notification.event == NotificationEvent.RESOLVED:
        return ""
    if alert.acknowledged_at is not None:
        return "the alert was acknowledged"
    if alert.snoozed_until is not None and alert.snoozed_until > now:
        return f"the alert is snoozed until {alert.snoozed_until:%Y-%m-%d %H:%M} UTC"
    return ""


def _record_sent(row_id: int, now: datetime) -> None:
    row = db.session.get(EmailMessage, row_id)
    row.status, row.sent_at, row.last_error = DeliveryStatus.SENT, now, ""
    _record_event(row, f"email, Message-ID {row.message_id}", now)
    db.session.commit()


def _record_failure(row_id: int, error: str, now: datetime) -> str:
    row = db.session.get(EmailMessage, row_id)
    row.last_error = error[:500]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = DeliveryStatus.FAILED
        # the timeline, which the organization's admins read, names the person (the event's user), not their
        # address, nor what the mail server said (kept on the row, `last_error`)
        _record_event(row, f"email failed after {row.attempts} attempts", now)
    else:
        row.status, row.due_at, row.claimed_at = DeliveryStatus.PENDING, now + backoff(row.attempts), None
    db.session.commit()
    return row.status


def _record_event(row: EmailMessage, what: str, now: datetime) -> None:
    """An EMAILED event on the alert's timeline (a summary has no alert: its row is the record)."""
    notification = db.session.get(Notification, row.notification_id)
    if notification is None or notification.alert_id is None:
        return
    alert = db.session.get(Alert, notification.alert_id)
    record_event(alert, AlertEventKind.EMAILED, now, user_id=row.user_id, detail=f"{notification.event} {what}")

