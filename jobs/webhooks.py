"""Webhook delivery jobs, on the delivery queue."""
from __future__ import annotations

from datetime import datetime

from jobs import in_app_context


@in_app_context
def send_delivery(delivery_id: int, now: datetime | None = None) -> str | None:
    """Send one delivery if it is still ours to send (claimed first: a re-run or a racing worker sends nothing)."""
    from dashboard.webhooks.sending import deliver

    return deliver(delivery_id, now)


@in_app_context
def deliver_due(now: datetime | None = None) -> int:
    """The periodic scan: queue every webhook delivery that is due (retries, and jobs lost with Redis)."""
    from dashboard.extensions import db
    from dashboard.models import utcnow
    from dashboard.queues import deliver_now
    from dashboard.webhooks.sending import due

    rows = due(now or utcnow())
    db.session.commit()
    for delivery_id, attempts in rows:
        deliver_now("jobs.webhooks.send_delivery", delivery_id, job_id=f"webhook-{delivery_id}-{attempts}")
    return len(rows)
