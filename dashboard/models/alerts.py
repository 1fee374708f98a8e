"""Alerts, their affected records, their events (the alert side of the sync log) and notifications."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from dashboard.extensions import db
from dashboard.models.base import enum_check, utcnow
from dashboard.vocabulary import AlertEventKind, AlertStatus, NotificationEvent, values

RULES = ("consecutive_failures", "error_threshold", "stale_sync", "connector_failing", "platform_incident")
ALERT_STATUSES = values(AlertStatus)
ALERT_EVENT_KINDS = values(AlertEventKind)
NOTIFICATION_EVENTS = values(NotificationEvent)


class Alert(db.Model):
    """An open or resolved condition. Platform alerts have no organization."""

    __tablename__ = "alerts"
    __table_args__ = (
        enum_check("rule", RULES, "rule"),
        enum_check("status", ALERT_STATUSES, "status"),
        sa.CheckConstraint(
            "(status = 'open' AND resolved_at IS NULL) OR (status = 'resolved' AND resolved_at IS NOT NULL)",
            name="resolved_at_iff_resolved",
        ),
        sa.CheckConstraint(
            "(rule = 'platform_incident') = (organization_id IS NULL)", name="platform_has_no_org"
        ),
        sa.Index(
            "uq_alerts_open_fingerprint",
            "fingerprint",
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        ),
        sa.Index("ix_alerts_org_status_opened", "organization_id", "status", "opened_at"),
        sa.Index("ix_alerts_fingerprint_opened", "fingerprint", "opened_at"),
        sa.Index(
            "ix_alerts_escalation_due",
            "opened_at",
            sqlite_where=sa.text("status = 'open' AND escalated_at IS NULL AND acknowledged_at IS NULL"),
            postgresql_where=sa.text("status = 'open' AND escalated_at IS NULL AND acknowledged_at IS NULL"),
        ),
        sa.Index(
            "ix_alerts_snoozed_until",
            "snoozed_until",
            sqlite_where=sa.text("snoozed_until IS NOT NULL"),
            postgresql_where=sa.text("snoozed_until IS NOT NULL"),
        ),
        sa.Index(
            "ix_alerts_global_due",
            "global_due_at",
            sqlite_where=sa.text("global_due_at IS NOT NULL AND global_announced_at IS NULL"),
            postgresql_where=sa.text("global_due_at IS NOT NULL AND global_announced_at IS NULL"),
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organization_id: so.Mapped[Optional[int]] = so.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    connector_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("connectors.id", ondelete="SET NULL"))
    rule: so.Mapped[str] = so.mapped_column(sa.String(30))
    fingerprint: so.Mapped[str] = so.mapped_column(sa.String(200))
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default=AlertStatus.OPEN.value)
    record_type: so.Mapped[Optional[str]] = so.mapped_column(sa.String(40))
    error_code: so.Mapped[Optional[str]] = so.mapped_column(sa.String(40))
    error_message: so.Mapped[Optional[str]] = so.mapped_column(sa.String(1000))
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    body: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    details: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)
    affected_count: so.Mapped[int] = so.mapped_column(default=0)
    opened_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    last_seen_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    resolved_at: so.Mapped[Optional[datetime]]
    global_due_at: so.Mapped[Optional[datetime]]
    global_announced_at: so.Mapped[Optional[datetime]]
    flapping: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    """Raised while its fingerprint keeps coming back: its raise and resolution are gathered, not announced."""
    acknowledged_at: so.Mapped[Optional[datetime]]
    """Someone said "I'm on it": pending emails and escalation stop; its resolution is still announced."""
    acknowledged_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    acknowledgement_note: so.Mapped[str] = so.mapped_column(sa.String(500), default="", server_default="")
    snoozed_until: so.Mapped[Optional[datetime]]
    """Its notifications wait until then; if it is still open then, its administrators are reminded once."""
    snoozed_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    muted_by_window_id: so.Mapped[Optional[int]] = so.mapped_column(
        sa.ForeignKey("maintenance_windows.id", ondelete="SET NULL"))
    """Raised during this maintenance window: notifies nobody, and is not counted toward the platform incident,
    until the window ends."""
    escalated_at: so.Mapped[Optional[datetime]]

    organization: so.Mapped[Optional["Organization"]] = so.relationship()  # noqa: F821
    acknowledged_by: so.Mapped[Optional["User"]] = so.relationship(foreign_keys=[acknowledged_by_id])  # noqa: F821


class AlertRecord(db.Model):
    """A record affected by an alert; a record joins an alert once."""

    __tablename__ = "alert_records"
    __table_args__ = (sa.Index("ix_alert_records_record", "record_id"),)

    alert_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    record_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("sync_records.id", ondelete="CASCADE"), primary_key=True
    )
    joined_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class AlertEvent(db.Model):
    """What happened to an alert and when: the alert side of the sync log."""

    __tablename__ = "alert_events"
    __table_args__ = (
        enum_check("kind", ALERT_EVENT_KINDS, "kind"),
        sa.Index("ix_alert_events_alert_time", "alert_id", "at"),
        sa.Index("ix_alert_events_record_time", "record_id", "at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    alert_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"))
    kind: so.Mapped[str] = so.mapped_column(sa.String(20))
    at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    record_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("sync_records.id", ondelete="CASCADE"))
    user_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    detail: so.Mapped[str] = so.mapped_column(sa.String(1000), default="")


class Notification(db.Model):
    """One alert event delivered to one user, at most once; or a summary gathering several.

    A notification is announced (pushed live, counted against the day's budget) unless it was gathered
    into another (`gathered_into_id`): a flapping alert's "keeps coming back", or a summary, which has
    no alert and is unique per user and `digest_key` (an organization's day, a grouping period).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        sa.UniqueConstraint("alert_id", "user_id", "event"),
        sa.UniqueConstraint("user_id", "digest_key"),
        enum_check("event", NOTIFICATION_EVENTS, "event"),
        sa.CheckConstraint("alert_id IS NOT NULL OR digest_key IS NOT NULL", name="alert_or_digest"),
        sa.Index("ix_notifications_user_created", "user_id", "created_at"),
        sa.Index("ix_notifications_user_org_created", "user_id", "organization_id", "created_at"),
        sa.Index("ix_notifications_gathered_into", "gathered_into_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    alert_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"))
    gathered_into_id: so.Mapped[Optional[int]] = so.mapped_column(
        sa.ForeignKey("notifications.id", ondelete="SET NULL"))
    digest_key: so.Mapped[Optional[str]] = so.mapped_column(sa.String(100))
    event: so.Mapped[str] = so.mapped_column(sa.String(10))
    organization_id: so.Mapped[Optional[int]] = so.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    read_at: so.Mapped[Optional[datetime]]

    alert: so.Mapped[Optional[Alert]] = so.relationship()
