"""Webhook delivery jobs, on the delivery queue."""
from __future__ import annotations

from jobs import in_app_context


@in_app_context
def deliver_due() -> None:
    """The periodic scan: queue every webhook delivery that is due (retries, and jobs lost with Redis)."""
