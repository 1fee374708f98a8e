"""When a notification is emailed: queued at its creation, due after its person's delay, claimed before sending."""
from __future__ import annotations

from datetime import datetime

from dashboard.models import Notification


def queue_for(notification: Notification, now: datetime) -> None:
    """Plan the email of an announced notification, in the caller's transaction (the writer's)."""
