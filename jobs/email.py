"""Email delivery jobs, on the delivery queue."""
from __future__ import annotations

from jobs import in_app_context


@in_app_context
def deliver_due() -> None:
    """The one-second scan: queue the send of every email that is due."""
