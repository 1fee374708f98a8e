"""Bounded growth: the sync log keeps its attempts `SYNC_LOG_RETENTION_DAYS` days (default 400).

What goes: attempts older than the cut-off, and then the batches left with no
attempt. What stays whatever its age:

- every attempt of a record not synced yet (pending, failed, or excluded, which
  an administrator may include again): its history is what explains it;
- every attempt of a record that belongs to an open alert;
- every attempt of a batch the alert engine has not evaluated yet;
- the hourly attempt counts, the alerts and their events (they are small and
  the charts and timelines read them).

The retention is always longer than `API_ATTEMPT_HORIZON_DAYS`: an attempt the API
may still accept is never deleted, so a client re-sending it finds it logged and
writes nothing twice.

Deletes run in short write transactions of about `CHUNK_ATTEMPTS` attempts (whole
batches, walked in id order), with a pause between them, so a sync batch or an
ingestion request waiting for the write lock gets it within one chunk's time and a pause.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dashboard.database import write_transaction
from dashboard.extensions import db
from dashboard.models import Alert, AlertRecord, SyncAttempt, SyncBatch, SyncRecord
from dashboard.vocabulary import AlertStatus, RecordStatus

DEFAULT_RETENTION_DAYS = 400
CHUNK_ATTEMPTS = 500
BATCHES_READ = 200
PAUSE_SECONDS = 0.1
"""Between two write transactions: long enough for a writer waiting for the lock to take it. SQLite's own busy
handler (a worker's wait) sleeps up to 100 ms between its tries; the web's writers retry every 10 ms."""

log = logging.getLogger(__name__)


def retention_days(config: Mapping[str, Any]) -> int:
    """The configured retention, clamped to one day more than the API's attempt horizon (with a warning)."""
    days = int(config.get("SYNC_LOG_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))
    horizon = int(config["API_ATTEMPT_HORIZON_DAYS"])
    if days <= horizon:
        log.warning("SYNC_LOG_RETENTION_DAYS=%d is not longer than API_ATTEMPT_HORIZON_DAYS=%d: attempts are kept "
                    "%d days instead, so that an attempt the API still accepts is never deleted",
                    days, horizon, horizon + 1)
        return horizon + 1
    return days


@dataclass(frozen=True)
class RetentionResult:
    cutoff: datetime
    """Attempts before this time may go."""
    attempts: int
    batches: int
    dry_run: bool


def apply_retention(now: datetime, days: int, *, dry_run: bool = False, chunk_attempts: int = CHUNK_ATTEMPTS,
                    pause: Callable[[], None] = lambda: time.sleep(PAUSE_SECONDS)) -> RetentionResult:
    """Delete the attempts older than `days` that may go, and the batches they leave empty.

    With `dry_run`, count them and delete nothing. Running it again deletes nothing more.
    """
    cutoff = now - timedelta(days=days)
    if dry_run:
        return RetentionResult(cutoff, _count_attempts(cutoff), _count_batches(cutoff), dry_run=True)
    attempts = batches = 0
    after = 0
    while chunks := _next_chunks(cutoff, after, chunk_attempts):
        for chunk in chunks:
            with write_transaction():
                attempts += db.session.execute(
                    sa.delete(SyncAttempt).where(SyncAttempt.batch_id.in_(chunk), _may_go(cutoff)),
                    execution_options={"synchronize_session": False},
                ).rowcount
                batches += db.session.execute(
                    sa.delete(SyncBatch).where(SyncBatch.id.in_(chunk), _emptied()),
                    execution_options={"synchronize_session": False},
                ).rowcount
            pause()
        after = chunks[-1][-1]
    log.info("sync-log retention: deleted %d attempts and %d batches older than %s", attempts, batches, cutoff)
    return RetentionResult(cutoff, attempts, batches, dry_run=False)


def _next_chunks(cutoff: datetime, after: int, chunk_attempts: int) -> list[list[int]]:
    """The next evaluated batches received before the cut-off, after batch id `after`, grouped into chunks of
    about `chunk_attempts` attempts (a larger batch is a chunk of its own)."""
    rows = db.session.execute(
        sa.select(SyncBatch.id, SyncBatch.attempt_count)
        .where(SyncBatch.id > after, SyncBatch.received_at < cutoff, SyncBatch.evaluated_at.is_not(None))
        .order_by(SyncBatch.id).limit(BATCHES_READ)
    ).all()
    db.session.commit()  # end the read before the writes
    chunks: list[list[int]] = []
    size = 0
    for batch_id, attempt_count in rows:
        if not chunks or (size and size + attempt_count > chunk_attempts):
            chunks.append([])
            size = 0
        chunks[-1].append(batch_id)
        size += attempt_count
    return chunks


def _may_go(cutoff: datetime) -> sa.ColumnElement[bool]:
    """An attempt that may be deleted (its batch being evaluated): old, of a synced record in no open alert."""
    synced = sa.select(SyncRecord.id).where(SyncRecord.id == SyncAttempt.record_id,
                                            SyncRecord.status == RecordStatus.SYNCED)
    in_open_alert = (sa.select(AlertRecord.record_id).join(Alert, Alert.id == AlertRecord.alert_id)
                     .where(AlertRecord.record_id == SyncAttempt.record_id, Alert.status == AlertStatus.OPEN))
    return sa.and_(SyncAttempt.attempted_at < cutoff, synced.exists(), ~in_open_alert.exists())


def _emptied() -> sa.ColumnElement[bool]:
    return sa.and_(SyncBatch.evaluated_at.is_not(None),
                   ~sa.select(SyncAttempt.id).where(SyncAttempt.batch_id == SyncBatch.id).exists())


def _old_batches(cutoff: datetime) -> sa.Select:
    return sa.select(SyncBatch.id).where(SyncBatch.received_at < cutoff, SyncBatch.evaluated_at.is_not(None))


def _count_attempts(cutoff: datetime) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(SyncAttempt)
        .where(SyncAttempt.batch_id.in_(_old_batches(cutoff)), _may_go(cutoff))
    ) or 0


def _count_batches(cutoff: datetime) -> int:
    """Old evaluated batches whose every attempt may go (or that have none)."""
    kept = sa.select(SyncAttempt.id).where(SyncAttempt.batch_id == SyncBatch.id, ~_may_go(cutoff))
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(SyncBatch)
        .where(SyncBatch.received_at < cutoff, SyncBatch.evaluated_at.is_not(None), ~kept.exists())
    ) or 0
