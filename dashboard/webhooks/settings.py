"""An organization's or the platform's webhooks as their settings pages change and list them.

A scope is an organization's id, or None for the platform's webhooks; a webhook of another scope is never
found (the pages answer 404). The callers commit. Each change is in the scope's audit log (the platform's for
None), in the caller's transaction; a secret never is.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa

from dashboard import audit
from dashboard.extensions import db
from dashboard.models import Organization, Webhook, WebhookDelivery
from dashboard.vocabulary import AuditAction, DeliveryStatus
from dashboard.webhooks import payload, signing
from dashboard.webhooks.outbox import new_message_id

LOG_LENGTH = 50
"""Deliveries shown in a webhook's log, newest first."""


@dataclass(frozen=True)
class Listed:
    webhook: Webhook
    last: WebhookDelivery | None


def _in_scope(organization_id: int | None) -> sa.ColumnElement[bool]:
    return Webhook.organization_id.is_(None) if organization_id is None \
        else Webhook.organization_id == organization_id


def find(organization_id: int | None, webhook_id: int) -> Webhook | None:
    """The scope's webhook with this id, not removed; None for another scope's or a removed one."""
    return db.session.scalar(sa.select(Webhook).where(Webhook.id == webhook_id, _in_scope(organization_id),
                                                      Webhook.removed_at.is_(None)))


def listing(organization_id: int | None) -> list[Listed]:
    """The scope's webhooks (not removed), oldest first, each with its latest delivery: two queries."""
    webhooks = list(db.session.scalars(
        sa.select(Webhook).where(_in_scope(organization_id), Webhook.removed_at.is_(None)).order_by(Webhook.id)))
    latest = sa.select(sa.func.max(WebhookDelivery.id)).where(
        WebhookDelivery.webhook_id.in_([w.id for w in webhooks])).group_by(WebhookDelivery.webhook_id)
    last = {d.webhook_id: d for d in db.session.scalars(sa.select(WebhookDelivery).where(
        WebhookDelivery.id.in_(latest)))} if webhooks else {}
    return [Listed(w, last.get(w.id)) for w in webhooks]


def deliveries(webhook: Webhook) -> list[WebhookDelivery]:
    """The webhook's last `LOG_LENGTH` deliveries, newest first."""
    return list(db.session.scalars(
        sa.select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(LOG_LENGTH)))


def create(organization_id: int | None, url: str, description: str, events: list[str],
           created_by_id: int | None) -> tuple[Webhook, str]:
    """Add a webhook; returns it and its secret, to show once."""
    webhook = Webhook(organization_id=organization_id, url=url, description=description, events=events,
                      secret=signing.new_secret(), enabled=True, created_by_id=created_by_id)
    db.session.add(webhook)
    db.session.flush()
    _audit(AuditAction.WEBHOOK_ADDED, webhook, {"description": description, "events": events})
    return webhook, webhook.secret


def rotate(webhook: Webhook) -> str:
    """A new secret, from now on (deliveries not yet sent are signed with it); returns it, to show once."""
    webhook.secret = signing.new_secret()
    _audit(AuditAction.WEBHOOK_CHANGED, webhook, {"secret": "rotated"})
    return webhook.secret


def set_enabled(webhook: Webhook, enabled: bool) -> None:
    """Enable or disable it; asking for what it is already changes (and records) nothing."""
    if webhook.enabled != enabled:
        _audit(AuditAction.WEBHOOK_CHANGED, webhook, {"enabled": [webhook.enabled, enabled]})
        webhook.enabled = enabled


def remove(webhook: Webhook, now: datetime) -> None:
    """Never called again; its row and delivery log stay. Deliveries not yet sent are skipped."""
    webhook.removed_at = now
    webhook.enabled = False
    _audit(AuditAction.WEBHOOK_REMOVED, webhook, None, at=now)


def _audit(action: AuditAction, webhook: Webhook, detail: dict[str, object] | None,
           at: datetime | None = None) -> None:
    audit.record(action, organization_id=webhook.organization_id, target=("webhook", webhook.id, public_label(webhook)),
                 detail=detail, at=at)


def public_label(webhook: Webhook) -> str:
    """How the audit log names a webhook: its scheme and host and its description, never the path or query, which
    often hold a credential (a Slack incoming-webhook URL is one)."""
    parts = urlsplit(webhook.url)
    origin = f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return f"{origin} ({webhook.description})" if webhook.description else origin


def plan_test(webhook: Webhook, organization: Organization | None, now: datetime) -> int:
    """A test delivery (no alert), due now; returns its id, for the caller to send once committed."""
    delivery = WebhookDelivery(webhook_id=webhook.id, alert_id=None, event=payload.TEST_EVENT,
                               message_id=new_message_id(), payload=payload.for_test(organization, now),
                               status=DeliveryStatus.PENDING, due_at=now, created_at=now)
    db.session.add(delivery)
    db.session.flush()
    return delivery.id


def delivery(delivery_id: int) -> WebhookDelivery:
    return db.session.get_one(WebhookDelivery, delivery_id)
