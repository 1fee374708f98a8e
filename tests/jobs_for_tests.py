"""Jobs that integration tests enqueue for a real `rq worker` (which imports them with `--path <repository>`)."""
from __future__ import annotations

import time
from datetime import timedelta

from jobs import in_app_context


@in_app_context
def write_long_batch(connector_id: int, attempts: int, hold_seconds: float, signal_key: str) -> int:
    """Write one sync batch of `attempts` new records in one transaction that stays open `hold_seconds` at least.

    A big orchestrator batch on a slow disk: the records, then the batch through the sync-log
    writer (`record_batch`), one commit. Sets `<signal_key>:started` in Redis once the transaction
    has written (so on SQLite it holds the write lock) and `<signal_key>:ended` after the commit,
    both to time.time(). (Calling Redis inside the transaction is what production code must not
    do; here it only tells the test when the lock is held.)
    """
    import sqlalchemy as sa
    from flask import current_app

    from dashboard.extensions import db, redis_ext
    from dashboard.models import Connector, SyncRecord, utcnow
    from dashboard.sync.log import Outcome, record_batch

    connector = db.session.get(Connector, connector_id)  # begins the writer transaction (BEGIN IMMEDIATE)
    now = utcnow()
    db.session.execute(sa.insert(SyncRecord), [{
        "organization_id": connector.organization_id, "connector_id": connector.id,
        "record_type": ("expense_claim", "mileage_claim", "reimbursement_payment")[i % 3],
        "source_ref": f"long-{i}", "volunteer": "Kari Nordmann", "description": "", "amount_minor": 100_00 + i,
        "currency": "NOK", "approved_at": now - timedelta(days=1), "status": "pending",
        "consecutive_failures": 0, "auto_attempts": 0,
    } for i in range(attempts)])
    began = time.time()
    redis_ext.client.set(f"{signal_key}:started", repr(began))
    record_ids = db.session.scalars(
        sa.select(SyncRecord.id).where(SyncRecord.connector_id == connector.id, SyncRecord.source_ref.like("long-%"))
        .order_by(SyncRecord.id)
    ).all()
    outcomes = [
        Outcome(record_id=record_id, attempted_at=now - timedelta(seconds=attempts - i), ok=False,
                error_code="account_mapping_missing", error_message="No ledger account mapped for category 'travel'")
        if i % 7 == 0 else
        Outcome(record_id=record_id, attempted_at=now - timedelta(seconds=attempts - i), ok=True,
                external_id=f"V-long-{i}")
        for i, record_id in enumerate(record_ids)
    ]
    batch = record_batch(connector, outcomes, source="orchestrator", started_at=outcomes[0].attempted_at,
                         finished_at=now, max_auto_attempts=current_app.config["SYNC_MAX_AUTO_ATTEMPTS"])
    batch_id = batch.id
    time.sleep(max(0.0, hold_seconds - (time.time() - began)))
    db.session.commit()
    redis_ext.client.set(f"{signal_key}:ended", repr(time.time()))
    return batch_id
