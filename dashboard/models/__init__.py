"""Typed models by area; importing this module registers them all."""
from dashboard.models.administration import AuditEntry, Invitation, PasswordReset
from dashboard.models.alerts import Alert, AlertEvent, AlertRecord, Notification
from dashboard.models.base import of_organization, utcnow
from dashboard.models.outreach import EmailMessage, MaintenanceWindow, Webhook, WebhookDelivery
from dashboard.models.sync_log import (
    Connector,
    HourlyAttemptCount,
    SyncAttempt,
    SyncBatch,
    SyncRecord,
)
from dashboard.models.tenancy import ApiToken, Membership, Organization, PlatformSettings, User

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertRecord",
    "AuditEntry",
    "ApiToken",
    "Connector",
    "EmailMessage",
    "HourlyAttemptCount",
    "Invitation",
    "MaintenanceWindow",
    "Membership",
    "Notification",
    "Organization",
    "PasswordReset",
    "PlatformSettings",
    "SyncAttempt",
    "SyncBatch",
    "SyncRecord",
    "User",
    "Webhook",
    "WebhookDelivery",
    "of_organization",
    "utcnow",
]
