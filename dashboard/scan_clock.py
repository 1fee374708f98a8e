"""When the periodic alert scan last ran, kept in Redis for the platform page's health panel."""
from __future__ import annotations

import logging
from datetime import datetime

from redis import Redis

log = logging.getLogger(__name__)
LAST_SCAN_KEY = "dashboard:last-scan"


def record_scan(connection: Redis, now: datetime) -> None:
    """Leave the scan's time; only the health panel reads it, so a Redis outage just leaves it stale."""
    try:
        connection.set(LAST_SCAN_KEY, now.isoformat())
    except Exception:  # noqa: BLE001 - only the health panel reads it
        log.warning("could not record the scan time in Redis")
