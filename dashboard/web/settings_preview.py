"""The settings preview's job as the settings page sees it: started for one organization, then read by its key.

A preview replays 30 days of the sync log twice, CPU work that must not run in a gevent web worker, so it is an
RQ job on the alerts queue and the page polls for its result. The job's id carries the organization's id, so a
key is only ever read under its own organization: another organization's admin cannot poll it.
"""
from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from dashboard.alerts.preview import Preview
from dashboard.extensions import db, redis_ext
from dashboard.models import Organization
from dashboard.queues import preview_job_id, preview_now

log = logging.getLogger(__name__)
KEY_PATTERN = re.compile(r"[0-9a-f]{32}")


class PreviewState(StrEnum):
    COMPUTING = "computing"
    READY = "ready"
    FAILED = "failed"
    GONE = "gone"
    """Unknown, expired, or its organization's no more."""
    UNAVAILABLE = "unavailable"
    """Redis could not be reached."""


@dataclass(frozen=True)
class PreviewJob:
    key: str
    state: PreviewState
    result: Preview | None = None


def current_settings(org: Organization) -> dict[str, int | None]:
    """The organization's saved settings under the names the replay takes."""
    return {"consecutive": org.consecutive_failure_threshold, "threshold": org.error_threshold,
            "window": org.error_window_hours, "stale": org.stale_after_hours, "rearm": org.error_rearm_level,
            "budget": org.daily_notification_budget}


def start_preview(org: Organization, proposed: dict[str, int | None]) -> PreviewJob:
    """Queue a preview of `proposed` against the saved settings; no transaction is held while Redis is called."""
    key = secrets.token_hex(16)
    current = current_settings(org)
    organization_id = org.id
    db.session.rollback()
    if not preview_now(preview_job_id(organization_id, key), organization_id, current, proposed):
        return PreviewJob(key, PreviewState.UNAVAILABLE)
    return PreviewJob(key, PreviewState.COMPUTING)


def read_preview(org: Organization, key: str) -> PreviewJob:
    """The state of the organization's preview `key` (GONE for a key of another organization)."""
    if not KEY_PATTERN.fullmatch(key):
        return PreviewJob(key, PreviewState.GONE)
    try:
        job = Job.fetch(preview_job_id(org.id, key), connection=redis_ext.client)
        status = job.get_status()
        result = job.return_value() if status == JobStatus.FINISHED else None
    except NoSuchJobError:
        return PreviewJob(key, PreviewState.GONE)
    except Exception:  # noqa: BLE001 - Redis outage: the page says so and offers to try again
        log.warning("could not read the settings preview %s", key)
        return PreviewJob(key, PreviewState.UNAVAILABLE)
    if status == JobStatus.FINISHED:
        return PreviewJob(key, PreviewState.READY, result) if result is not None else PreviewJob(
            key, PreviewState.GONE)
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        return PreviewJob(key, PreviewState.FAILED)
    return PreviewJob(key, PreviewState.COMPUTING)
