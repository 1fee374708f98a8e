"""Connectors, the records they sync, and the sync log (batches and attempts)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from dashboard.extensions import db
from dashboard.models.base import enum_check, utcnow
from dashboard.sync.connectors import registry
from dashboard.vocabulary import AttemptOutcome, RecordStatus, RecordType, values

RECORD_TYPES = values(RecordType)
RECORD_STATUSES = values(RecordStatus)
OUTCOMES = values(AttemptOutcome)
BATCH_SOURCES = ("orchestrator", "api")


class Connector(db.Model):
    """An organization's link to its accounting system, through one of the registry's providers."""

    __tablename__ = "connectors"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organization_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: so.Mapped[str] = so.mapped_column(sa.String(100))
    provider: so.Mapped[str] = so.mapped_column(sa.String(20), default="sandbox")
    enabled: so.Mapped[bool] = so.mapped_column(default=True)
    settings: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)
    secret: so.Mapped[Optional[str]] = so.mapped_column(sa.Text)
    """Write-only: an API token, or a provider's OAuth tokens as JSON (longer than a plain token)."""
    last_success_at: so.Mapped[Optional[datetime]]
    last_batch_at: so.Mapped[Optional[datetime]]
    removed_at: so.Mapped[Optional[datetime]]
    """Removed by an administrator: never synced again, hidden from lists; its records and sync log stay."""
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    organization: so.Mapped["Organization"] = so.relationship(back_populates="connectors")  # noqa: F821

    @so.validates("provider")
    def _registered(self, _key: str, name: str) -> str:
        """A provider of the registry, checked here rather than by the database so adding one needs no migration."""
        return registry.provider(name).name


def _partial(condition: str) -> dict[str, Any]:
    """An index of the rows where `condition` holds, for indexes whose queries never ask for the others.

    `last_error_code = ?` and `next_attempt_at <= ?` never match NULL, and most records (the synced ones) have
    neither: the indexes hold the failing records only, and a record that changes between synced and failed
    adds or removes one entry of each instead of moving it (the sync log's write updates records by the
    thousand).
    """
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


class SyncRecord(db.Model):
    """One approved record that must reach the accounting system."""

    __tablename__ = "sync_records"
    __table_args__ = (
        sa.UniqueConstraint("connector_id", "source_ref"),
        enum_check("record_type", RECORD_TYPES, "record_type"),
        enum_check("status", RECORD_STATUSES, "status"),
        sa.CheckConstraint("amount_minor >= 0", name="amount_nonnegative"),
        sa.CheckConstraint("consecutive_failures >= 0", name="streak_nonnegative"),
        sa.Index("ix_sync_records_org_status_approved", "organization_id", "status", "approved_at"),
        sa.Index("ix_sync_records_connector_due", "connector_id", "status", "next_attempt_at",
                 **_partial("next_attempt_at IS NOT NULL")),
        sa.Index("ix_sync_records_connector_status_approved", "connector_id", "status", "approved_at"),
        # The status screen's keyset pages: default sort, sort by amount, error filter sorted by amount.
        sa.Index("ix_sync_records_org_approved", "organization_id", "approved_at", "id"),
        sa.Index("ix_sync_records_org_status_problem", "organization_id", "status",
                 sa.func.coalesce(sa.column("last_attempt_at"), sa.column("approved_at")), "id"),
        sa.Index("ix_sync_records_org_amount", "organization_id", "amount_minor", "id"),
        sa.Index("ix_sync_records_org_error_amount", "organization_id", "last_error_code", "amount_minor", "id",
                 **_partial("last_error_code IS NOT NULL")),
        sa.Index("ix_sync_records_org_status_amount", "organization_id", "status", "amount_minor", "id"),
        sa.Index("ix_sync_records_org_status_type_approved", "organization_id", "status", "record_type", "approved_at",
                 "id"),
        sa.Index("ix_sync_records_org_error_approved", "organization_id", "last_error_code", "approved_at", "id",
                 **_partial("last_error_code IS NOT NULL")),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organization_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    connector_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("connectors.id", ondelete="CASCADE"))
    record_type: so.Mapped[str] = so.mapped_column(sa.String(40))
    source_ref: so.Mapped[str] = so.mapped_column(sa.String(100))
    volunteer: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    volunteer_ref: so.Mapped[Optional[str]] = so.mapped_column(sa.String(100))
    """Who is owed the money: the platform's opaque reference for the volunteer (never a name), or None when
    the source did not say. Set once known and never changed, like the record's other details."""
    description: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    amount_minor: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    currency: so.Mapped[str] = so.mapped_column(sa.String(3), default="NOK")
    approved_at: so.Mapped[datetime]
    status: so.Mapped[str] = so.mapped_column(sa.String(20), default=RecordStatus.PENDING.value)
    consecutive_failures: so.Mapped[int] = so.mapped_column(default=0)
    auto_attempts: so.Mapped[int] = so.mapped_column(default=0)
    next_attempt_at: so.Mapped[Optional[datetime]]
    last_attempt_at: so.Mapped[Optional[datetime]]
    last_error_code: so.Mapped[Optional[str]] = so.mapped_column(sa.String(40))
    last_error_message: so.Mapped[Optional[str]] = so.mapped_column(sa.String(1000))
    synced_at: so.Mapped[Optional[datetime]]
    external_id: so.Mapped[Optional[str]] = so.mapped_column(sa.String(200))
    excluded_reason: so.Mapped[Optional[str]] = so.mapped_column(sa.String(500))
    retry_requested_by_id: so.Mapped[Optional[int]] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    """The administrator whose manual retry the next attempt carries out."""

    connector: so.Mapped[Connector] = so.relationship()


class SyncBatch(db.Model):
    """One orchestrator run for one connector, or one ingested payload."""

    __tablename__ = "sync_batches"
    __table_args__ = (
        enum_check("source", BATCH_SOURCES, "source"),
        sa.UniqueConstraint("organization_id", "idempotency_key"),
        sa.Index("ix_sync_batches_evaluated_at", "evaluated_at"),
        sa.Index(
            "ix_sync_batches_unevaluated",
            "received_at",
            sqlite_where=sa.text("evaluated_at IS NULL"),
            postgresql_where=sa.text("evaluated_at IS NULL"),
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organization_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    connector_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("connectors.id", ondelete="CASCADE"))
    source: so.Mapped[str] = so.mapped_column(sa.String(20), default="orchestrator")
    started_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    finished_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    attempt_count: so.Mapped[int] = so.mapped_column(default=0)
    failure_count: so.Mapped[int] = so.mapped_column(default=0)
    received_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    """When this service wrote the batch: the sweep judges a batch's age by it, not by a client's clock."""
    stopped_reason: so.Mapped[Optional[str]] = so.mapped_column(sa.String(40))
    evaluated_at: so.Mapped[Optional[datetime]]
    idempotency_key: so.Mapped[Optional[str]] = so.mapped_column(sa.String(200))
    request_hash: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64))
    """SHA-256 of an ingested request's body: a reused Idempotency-Key with another body is refused."""
    response_body: so.Mapped[Optional[dict[str, Any]]] = so.mapped_column(sa.JSON)


class SyncAttempt(db.Model):
    """The sync log: one row per push attempt, never updated.

    An attempt is a fact identified by its record and its time: sending it again
    writes nothing. An attempt older than its record's newest when it arrives is
    `late`: logged and shown, but it changed neither the record's state nor any
    streak (its own `failure_streak` is 0), and the alert rules do not act on it.
    """

    __tablename__ = "sync_attempts"
    __table_args__ = (
        enum_check("outcome", OUTCOMES, "outcome"),
        sa.CheckConstraint("failure_streak >= 0", name="streak_nonnegative"),
        sa.CheckConstraint(
            "(outcome = 'success' AND error_code IS NULL) OR (outcome = 'failure' AND error_code IS NOT NULL)",
            name="error_code_iff_failure",
        ),
        sa.UniqueConstraint("record_id", "attempted_at"),
        sa.Index("ix_sync_attempts_batch", "batch_id"),
        sa.Index(
            "ix_sync_attempts_org_failures",
            "organization_id",
            "attempted_at",
            "id",
            sqlite_where=sa.text("outcome = 'failure'"),
            postgresql_where=sa.text("outcome = 'failure'"),
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organization_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    batch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("sync_batches.id", ondelete="CASCADE"))
    record_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("sync_records.id", ondelete="CASCADE"))
    attempted_at: so.Mapped[datetime]
    outcome: so.Mapped[str] = so.mapped_column(sa.String(10))
    error_code: so.Mapped[Optional[str]] = so.mapped_column(sa.String(40))
    error_message: so.Mapped[Optional[str]] = so.mapped_column(sa.String(1000))
    failure_streak: so.Mapped[int] = so.mapped_column(default=0)
    late: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    triggered_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))


class HourlyAttemptCount(db.Model):
    """Attempts per organization and hour, kept as batches land, for display and charts."""

    __tablename__ = "hourly_attempt_counts"
    __table_args__ = (
        # The platform page ranks every organization by its last 24 hours of failures at once: this index covers
        # that read and holds only the hours that had a failure, so a healthy organization costs one empty seek.
        sa.Index("ix_hourly_attempt_counts_failing", "organization_id", "hour", "failures",
                 sqlite_where=sa.text("failures > 0"), postgresql_where=sa.text("failures > 0")),
    )

    organization_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    hour: so.Mapped[datetime] = so.mapped_column(primary_key=True)
    successes: so.Mapped[int] = so.mapped_column(default=0)
    failures: so.Mapped[int] = so.mapped_column(default=0)
