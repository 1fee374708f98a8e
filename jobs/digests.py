"""Daily digest emails, on the delivery queue (`dashboard.mail.digest_sending` says how each is sent once)."""
from __future__ import annotations

from jobs import in_app_context


@in_app_context
def send_due_digests() -> None:
    """Make the digest of every person whose chosen local time has come today, and queue the sends due."""
    from dashboard.mail.digest_sending import make_due_digests
    from dashboard.models import utcnow

    make_due_digests(utcnow())


@in_app_context
def send_digest(row_id: int) -> None:
    """Send one digest, at most once whoever else runs this for the same row."""
    from dashboard.mail.digest_sending import send
    from dashboard.models import utcnow

    send(row_id, utcnow())
