"""Email delivery jobs, on the delivery queue (`dashboard.mail.sending` says how a send happens once)."""
from __future__ import annotations

from jobs import in_app_context


@in_app_context
def deliver_due() -> None:
    """The one-second scan: queue the send of every email that is due (one indexed read when none is)."""
    from dashboard.database import read_only_from_now
    from dashboard.mail.sending import queue_due
    from dashboard.models import utcnow

    read_only_from_now()  # a read: it must not take SQLite's write lock every second
    queue_due(utcnow())


@in_app_context
def send_email(row_id: int) -> None:
    """Send one notification email, at most once whoever else runs this for the same row."""
    from dashboard.mail.sending import send
    from dashboard.models import utcnow

    send(row_id, utcnow())


@in_app_context
def send_message(raw: bytes) -> None:
    """Send one composed message that has no row of its own (a password-reset link): sending it in a job keeps the
    request's answer as quick for an address with an account as for one without. A refusal raises, so RQ retries."""
    from email import message_from_bytes, policy

    from dashboard.database import read_only_from_now
    from dashboard.mail import transport

    read_only_from_now()
    transport.send(message_from_bytes(raw, policy=policy.default))  # type: ignore[arg-type]
