"""Typed models by area; importing this module registers them all."""
from dashboard.models.alerts import Alert, AlertEvent, AlertRecord, Notification
from dashboard.models.base import of_organization, utcnow
from dashboard.models.outreach import EmailMessage, MaintenanceWindow, Webhook, WebhookDelivery
from dashboard.models.sync_log import (
    Connector,
    HourlyAttemptCount,
    RecordAction,
    SyncAttempt,
    SyncBatch,
    SyncRecord,
)
from dashboard.models.tenancy import ApiToken, Membership, Organization, PlatformSettings, User

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertRecord",
    "ApiToken",
    "Connector",
    "EmailMessage",
    "HourlyAttemptCount",
    "MaintenanceWindow",
    "Membership",
    "Notification",
    "Organization",
    "PlatformSettings",
    "RecordAction",
    "SyncAttempt",
    "SyncBatch",
    "SyncRecord",
    "User",
    "Webhook",
    "WebhookDelivery",
    "of_organization",
    "utcnow",
]
