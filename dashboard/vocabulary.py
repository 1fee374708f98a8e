"""The words the whole service shares: states, outcomes, events, and their labels, each defined once.

They are string enums, so they compare equal to the strings stored in the
database and sent to browsers. Templates get them as globals (`RecordStatus`,
`LiveEvent`, ...), and the browser's scripts read the live event names from
the page (`data-live-events` on `<body>`), so no name is spelled twice. Plain
Python: the pure alert rules use it too. Their labels, in people's words, are
the web's (`dashboard.web.formatting`).
"""
from __future__ import annotations

from enum import StrEnum


class RecordStatus(StrEnum):
    PENDING = "pending"
    SYNCED = "synced"
    FAILED = "failed"
    EXCLUDED = "excluded"


WAITING_STATUSES = (RecordStatus.PENDING, RecordStatus.FAILED)
"""Approved records not yet in the accounting system (and not taken out by an administrator)."""
CLEARED_STATUSES = (RecordStatus.SYNCED, RecordStatus.EXCLUDED)
"""Records an alert no longer waits for."""


class RecordType(StrEnum):
    """What an approved record is (the sandbox connector locks accounting periods by it)."""

    EXPENSE_CLAIM = "expense_claim"
    MILEAGE_CLAIM = "mileage_claim"
    REIMBURSEMENT_PAYMENT = "reimbursement_payment"


class AttemptOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class AlertStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class AlertEventKind(StrEnum):
    """What the alert side of the sync log records."""

    RAISED = "raised"
    JOINED = "joined"
    NOTIFIED = "notified"
    RESOLVED = "resolved"
    ANNOUNCED = "announced"
    FOLDED = "folded"
    UPDATED = "updated"
    GATHERED = "gathered"
    """A notification was gathered into a summary (flapping, or past the day's budget) instead of announced."""
    EMAILED = "emailed"
    """A notification of it was emailed (detail: to whom, which event, the Message-ID)."""
    DIGESTED = "digested"
    """It was listed in a person's daily digest email."""
    WEBHOOK = "webhook"
    """A webhook delivery of one of its events ended: delivered, or given up (detail: endpoint, status code)."""
    ACKNOWLEDGED = "acknowledged"
    """An administrator said "I'm on it" (detail: their note)."""
    SNOOZED = "snoozed"
    """An administrator held back its notifications until a time (detail: until when)."""
    MUTED = "muted"
    """Raised during a maintenance window it matches: shown, but nobody is notified until the window ends."""
    REMINDED = "reminded"
    """Still open when its snooze or maintenance window ended: its administrators were reminded."""
    ESCALATED = "escalated"
    """Open and unacknowledged past the escalation time: global administrators were told."""


class NotificationEvent(StrEnum):
    """The alert events a person is told of."""

    RAISED = "raised"
    RESOLVED = "resolved"
    FLAPPING = "flapping"
    """An alert keeps coming back: told once, its later raises and resolutions gathered into it."""
    SUMMARY = "summary"
    """Events gathered past a day's budget, or global announcements of one grouping period."""
    REMINDED = "reminded"
    """Still open when its snooze or maintenance window ended."""
    ESCALATED = "escalated"
    """Open and unacknowledged past the escalation time."""


WEBHOOK_EVENTS = ("raised", "resolved", "reminded", "escalated", "acknowledged")
"""What a webhook may ask to be told of: the alert events that notify people, and acknowledgements."""


class EmailChoice(StrEnum):
    """How a person wants to hear of one kind of notification by email."""

    IMMEDIATE = "immediate"
    """Emailed once it has stayed unread for the person's delay."""
    DIGEST = "digest"
    """Listed in the daily digest, at the person's chosen local time."""
    NEVER = "never"


class EmailKind(StrEnum):
    NOTIFICATION = "notification"
    DIGEST = "digest"


class DeliveryStatus(StrEnum):
    """Where an email or a webhook delivery is: claimed (`sending`) in the database before it goes out."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    """Not sent, on purpose: read, acknowledged or snoozed before it was due, or its person's choice changed."""
    FAILED = "failed"
    """Given up after its retries."""


class LiveEvent(StrEnum):
    """Server-Sent Event types, published after commit and listened to by the pages."""

    NOTIFICATION = "notification"
    RECORDS_CHANGED = "records-changed"
    ALERT_CHANGED = "alert-changed"
    PLATFORM_CHANGED = "platform-changed"
    TRAY_CHANGED = "tray-changed"
    """A user's tray gained a gathered (not announced) notification or a summary's count changed: refresh, quietly."""
    RESYNC = "resync"
    """Sent by the stream itself when it may have missed events: re-fetch from the database."""
    SESSIONS_REVOKED = "sessions-revoked"
    """A user's older sessions ended: their streams close (the browser never sees this one)."""


LANGUAGES = ("nb", "en")
"""The interface languages: Norwegian bokmål and English (the database checks the same list)."""


class AuditAction(StrEnum):
    """What the audit log records: every administrative action, and sign-in failures."""

    RECORD_RETRY = "retry"
    RECORD_EXCLUDE = "exclude"
    RECORD_INCLUDE = "include"
    SETTINGS_CHANGED = "settings_changed"
    PLATFORM_SETTINGS_CHANGED = "platform_settings_changed"
    ORGANIZATION_CREATED = "organization_created"
    ORGANIZATION_CHANGED = "organization_changed"
    ORGANIZATION_ARCHIVED = "organization_archived"
    ORGANIZATION_RESTORED = "organization_restored"
    CONNECTOR_ADDED = "connector_added"
    CONNECTOR_CHANGED = "connector_changed"
    CONNECTOR_ENABLED = "connector_enabled"
    CONNECTOR_DISABLED = "connector_disabled"
    CONNECTOR_REMOVED = "connector_removed"
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    ALERT_ACKNOWLEDGED = "alert_acknowledged"
    ALERT_SNOOZED = "alert_snoozed"
    ALERT_UNSNOOZED = "alert_unsnoozed"
    WINDOW_CREATED = "window_created"
    WINDOW_ENDED = "window_ended"
    WEBHOOK_ADDED = "webhook_added"
    WEBHOOK_CHANGED = "webhook_changed"
    WEBHOOK_REMOVED = "webhook_removed"
    INVITATION_SENT = "invitation_sent"
    INVITATION_RESENT = "invitation_resent"
    INVITATION_REVOKED = "invitation_revoked"
    INVITATION_ACCEPTED = "invitation_accepted"
    ADMIN_REMOVED = "admin_removed"
    GLOBAL_ADMIN_GRANTED = "global_admin_granted"
    GLOBAL_ADMIN_REVOKED = "global_admin_revoked"
    PASSWORD_RESET_REQUESTED = "password_reset_requested"
    PASSWORD_RESET = "password_reset"
    PASSWORD_CHANGED = "password_changed"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_IN_LOCKED = "sign_in_locked"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The stored strings of an enum, for CHECK constraints and validators."""
    return tuple(member.value for member in enum)


def register(app) -> None:  # type: ignore[no-untyped-def]
    """Expose the vocabulary to templates (and, through `live_events`, to the pages' scripts)."""
    for enum in (RecordStatus, RecordType, AttemptOutcome, AlertStatus, AlertEventKind, NotificationEvent, LiveEvent,
                 EmailChoice, DeliveryStatus, AuditAction):
        app.add_template_global(enum, enum.__name__)
    app.add_template_global({member.name: member.value for member in LiveEvent}, "live_events")
