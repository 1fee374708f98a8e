"""The sync-log retention job: run daily by `rq cron` (jobs.cron), in small write transactions."""
from __future__ import annotations

from jobs import in_app_context


@in_app_context
def apply_retention() -> None:
    """Delete the attempts past SYNC_LOG_RETENTION_DAYS that may go, and the batches they leave empty."""
    from flask import current_app

    from dashboard.database import read_only_from_now
    from dashboard.models import utcnow
    from dashboard.sync import retention

    read_only_from_now()  # its reads take no write lock: each delete holds it in a short transaction of its own
    retention.apply_retention(utcnow(), retention.retention_days(current_app.config))
