"""What reaches people outside the app: emails, webhooks, and the maintenance windows that hold them back."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from dashboard.extensions import db
from dashboard.models.base import enum_check, utcnow
from dashboard.vocabulary import DeliveryStatus, EmailKind, values

DELIVERY_STATUSES = values(DeliveryStatus)


class EmailMessage(db.Model):
    """One email to one person: a notification's, or a digest's. Claimed in the database before it is sent.

    `message_id` is fixed when the row is made, so a send repeated after a crash (the only repeat possible:
    the SMTP server accepted, the worker died before `sent`) carries the same `Message-ID`.
    """

    __tablename__ = "email_messages"
    __table_args__ = (
        enum_check("kind", values(EmailKind), "kind"),
        enum_check("status", DELIVERY_STATUSES, "status"),
        sa.CheckConstraint("notification_id IS NOT NULL OR digest_key IS NOT NULL", name="notification_or_digest"),
        sa.UniqueConstraint("user_id", "digest_key"),
        sa.Index("ix_email_messages_status_due", "status", "due_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: so.Mapped[str] = so.mapped_column(sa.String(12))
    notification_id: so.Mapped[Optional[int]] = so.mapped_column(
        sa.ForeignKey("notifications.id", ondelete="CASCADE"), unique=True)
    digest_key: so.Mapped[Optional[str]] = so.mapped_column(sa.String(100))
    message_id: so.Mapped[str] = so.mapped_column(sa.String(250), unique=True)
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default=DeliveryStatus.PENDING.value)
    due_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    claimed_at: so.Mapped[Optional[datetime]]
    sent_at: so.Mapped[Optional[datetime]]
    attempts: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    last_error: so.Mapped[str] = so.mapped_column(sa.String(500), default="", server_default="")
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class Webhook(db.Model):
    """An endpoint told of alert events: an organization's (its alerts) or the platform's (no organization)."""

    __tablename__ = "webhooks"
    __table_args__ = (sa.Index("ix_webhooks_org", "organization_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organization_id: so.Mapped[Optional[int]] = so.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    url: so.Mapped[str] = so.mapped_column(sa.String(2000))
    description: so.Mapped[str] = so.mapped_column(sa.String(200), default="", server_default="")
    events: so.Mapped[list[str]] = so.mapped_column(sa.JSON, default=list)
    """The notification events it wants (`WEBHOOK_EVENTS`)."""
    secret: so.Mapped[str] = so.mapped_column(sa.String(100))
    """The Standard Webhooks signing secret, `whsec_` and base64 of its bytes."""
    enabled: so.Mapped[bool] = so.mapped_column(default=True, server_default=sa.true())
    removed_at: so.Mapped[Optional[datetime]]
    """Set when removed: a removed webhook is never called again; its delivery log stays."""
    created_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class WebhookDelivery(db.Model):
    """One alert event sent to one webhook, at most once (a test message has no alert), retried until delivered."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        enum_check("status", DELIVERY_STATUSES, "status"),
        sa.UniqueConstraint("webhook_id", "alert_id", "event"),
        sa.Index("ix_webhook_deliveries_status_due", "status", "due_at"),
        sa.Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    webhook_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"))
    alert_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"))
    event: so.Mapped[str] = so.mapped_column(sa.String(20))
    message_id: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    """The `webhook-id` header: the same on every retry, so receivers can drop repeats."""
    payload: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default=DeliveryStatus.PENDING.value)
    due_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    claimed_at: so.Mapped[Optional[datetime]]
    sent_at: so.Mapped[Optional[datetime]]
    attempts: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    last_status_code: so.Mapped[Optional[int]]
    last_error: so.Mapped[str] = so.mapped_column(sa.String(500), default="", server_default="")
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class MaintenanceWindow(db.Model):
    """A time when an organization expects failures: alerts it matches are raised and shown but notify nobody.

    Empty `error_codes` / `record_types` match every code / type.
    """

    __tablename__ = "maintenance_windows"
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        sa.Index("ix_maintenance_windows_org_ends", "organization_id", "ends_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organization_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    starts_at: so.Mapped[datetime]
    ends_at: so.Mapped[datetime]
    """When it ends; ending a window early sets it to that moment."""
    error_codes: so.Mapped[list[str]] = so.mapped_column(sa.JSON, default=list)
    record_types: so.Mapped[list[str]] = so.mapped_column(sa.JSON, default=list)
    reason: so.Mapped[str] = so.mapped_column(sa.String(300), default="", server_default="")
    created_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    ended_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    closed_at: so.Mapped[Optional[datetime]]
    """When the end was handled: the alerts it held back that were still open got their `reminded` notification."""
