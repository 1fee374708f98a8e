"""Making and sending daily digests exactly once per person and local day.

1. Claim the day: every minute, for each person whose digest is due (`dashboard.mail.digest`), insert its
   `EmailMessage` row (kind digest, unique per person and `digest_key`) and advance `digest_sent_at`, in one
   short transaction. A second worker's insert breaks the unique constraint: it leaves that person alone.
2. Claim the send: one conditional UPDATE (pending and due, or `sending` and stale) makes the row `sending`;
   whoever updates nothing stops. The digest is gathered and composed in that transaction, or skipped when there
   is nothing to tell (the day stays claimed, so it is not tried again all day).
3. Send with no transaction open; then record `sent` and a DIGESTED event on each alert listed, or, when the
   server refused or could not be reached, back to `pending` after a backoff (`failed` after MAX_ATTEMPTS).

As with notification emails, only a crash between the server's acceptance and step 3 repeats a digest, once its
claim is stale, and then with the same Message-ID.
"""
from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage as Message

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dashboard.alerts.writer import record_event
from dashboard.extensions import db
from dashboard.mail import transport
from dashboard.mail.digest import due_digest
from dashboard.mail.digest_content import digest_email, gather, new_message_id, takes_digest, time_zone_of
from dashboard.claims import claim, claimable
from dashboard.mail.sending import MAX_ATTEMPTS, backoff
from dashboard.models import Alert, EmailMessage, User
from dashboard.queues import deliver_now
from dashboard.vocabulary import AlertEventKind, DeliveryStatus, EmailChoice, EmailKind

log = logging.getLogger(__name__)

SCAN_LIMIT = 500
"""Digest rows queued for sending per run (a minute): more wait for the next one."""


# Claiming the day -------------------------------------------------------------------------------------------

def due_people(now: datetime) -> list[tuple[int, str]]:
    """(user id, digest key) of the people whose digest is due at `now`."""
    people = db.session.scalars(sa.select(User).where(sa.or_(
        User.email_raised == EmailChoice.DIGEST, User.email_resolved == EmailChoice.DIGEST)).order_by(User.id))
    due = []
    for person in people:
        digest = due_digest(time_zone_of(person), person.digest_minute, person.digest_sent_at, now)
        if digest is not None:
            due.append((person.id, digest.key))
    db.session.commit()
    return due


def claim_day(user_id: int, key: str, now: datetime) -> int | None:
    """Make the person's digest row of `key` and advance their `digest_sent_at`; its id, or None when that day's
    digest exists already (another worker's, or one made before the person moved their time)."""
    person = db.session.get(User, user_id)
    taken = db.session.scalar(sa.select(EmailMessage.id).where(EmailMessage.user_id == user_id,
                                                                EmailMessage.digest_key == key))
    row = None
    if person is not None and taken is None:
        row = EmailMessage(kind=EmailKind.DIGEST, user_id=user_id, digest_key=key, status=DeliveryStatus.PENDING,
                           message_id=new_message_id(person, key), due_at=now, created_at=now)
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except IntegrityError:  # a racing worker inserted it between the look and the insert
            row = None
        else:
            person.digest_sent_at = now
    db.session.commit()
    return row.id if row is not None else None


# Queueing sends ---------------------------------------------------------------------------------------------

def sendable_rows(now: datetime) -> list[tuple[int, int]]:
    """(id, attempts) of the digest rows to send now: pending and due, or claimed by a worker that died."""
    rows = list(db.session.execute(
        sa.select(EmailMessage.id, EmailMessage.attempts).where(
            EmailMessage.kind == EmailKind.DIGEST, claimable(EmailMessage, now))
        .order_by(EmailMessage.due_at).limit(SCAN_LIMIT)).tuples())
    db.session.commit()
    return rows


def send_job_id(row_id: int, attempts: int) -> str:
    """A new job id per attempt: a retry is not mistaken for the job of the attempt before."""
    return f"digest-{row_id}-{attempts}"


def make_due_digests(now: datetime) -> int:
    """Claim the due digests and queue the send of every digest row that is due; how many were queued."""
    for user_id, key in due_people(now):
        claim_day(user_id, key, now)
    return sum(deliver_now("jobs.digests.send_digest", row_id, job_id=send_job_id(row_id, attempts))
               for row_id, attempts in sendable_rows(now))


# One send ---------------------------------------------------------------------------------------------------

def send(row_id: int, now: datetime) -> str:
    """Send one digest row at most once; the row's status afterwards, or "" when another worker had it."""
    claimed = _claim_and_compose(row_id, now)
    if not isinstance(claimed, tuple):
        return claimed
    message, listed = claimed
    try:
        transport.send(message)
    except (transport.TransportError, ValueError) as error:  # ValueError: a malformed SMTP_URL
        return _record_failure(row_id, str(error), now)
    _record_sent(row_id, listed, now)
    return DeliveryStatus.SENT


def _claim_and_compose(row_id: int, now: datetime) -> tuple[Message, list[int]] | str:
    if not claim(EmailMessage, row_id, now, EmailMessage.kind == EmailKind.DIGEST):
        db.session.commit()
        return ""
    row = db.session.get(EmailMessage, row_id, populate_existing=True)
    person = db.session.get(User, row.user_id)
    if not takes_digest(person):
        return _skip(row, "the person no longer chose a digest")
    digest = gather(person, row, time_zone_of(person))
    if digest.is_empty:
        return _skip(row, "nothing open and nothing changed")
    message = digest_email(row, person, digest, now)
    listed = [alert.id for alert in digest.listed]
    db.session.commit()
    return message, listed


def _skip(row: EmailMessage, reason: str) -> str:
    row.status, row.last_error = DeliveryStatus.SKIPPED, reason
    db.session.commit()
    return DeliveryStatus.SKIPPED


def _record_sent(row_id: int, listed: list[int], now: datetime) -> None:
    row = db.session.get(EmailMessage, row_id)
    row.status, row.sent_at, row.last_error = DeliveryStatus.SENT, now, ""
    for alert in db.session.scalars(sa.select(Alert).where(Alert.id.in_(listed))):
        record_event(alert, AlertEventKind.DIGESTED, now, user_id=row.user_id,
                     detail=f"digest {row.digest_key}, Message-ID {row.message_id}")
    db.session.commit()


def _record_failure(row_id: int, error: str, now: datetime) -> str:
    row = db.session.get(EmailMessage, row_id)
    row.last_error = error[:500]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = DeliveryStatus.FAILED
        log.warning("digest %s to user %s failed after %s attempts: %s", row.digest_key, row.user_id,
                    row.attempts, error)
    else:
        row.status, row.due_at, row.claimed_at = DeliveryStatus.PENDING, now + backoff(row.attempts), None
    db.session.commit()
    return row.status
