"""Which webhooks hear of an alert event: deliveries planned in the writer's transaction, sent after commit."""
from __future__ import annotations

from datetime import datetime

from dashboard.models import Alert


def queue_for_alert(alert: Alert, event: str, now: datetime) -> None:
    """Plan one delivery per webhook that wants `event` of this alert, at most once each."""
