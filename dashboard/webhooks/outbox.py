"""Which webhooks hear of an alert event: deliveries planned in the writer's transaction, sent after commit.

This runs for every alert event, so it costs one small query per organization and transaction (cached in the
session until it commits or rolls back), and nothing more for an organization without webhooks.

Quiet rules, as for people: a flapping alert tells of the first raise of its episode only, and a resolution
goes only to webhooks that were told of the alert (its `raised` or `reminded`): a muted or flapping alert's
resolution tells nobody who did not hear of it.
"""
from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dashboard.extensions import db
from dashboard.models import Alert, Webhook, WebhookDelivery
from dashboard.queues import deliver_after_commit
from dashboard.vocabulary import DeliveryStatus, NotificationEvent
from dashboard.webhooks import payload

_CACHE = "webhooks_by_scope"
TOLD_OF = (NotificationEvent.RAISED.value, NotificationEvent.REMINDED.value)


def queue_for_alert(alert: Alert, event: str, now: datetime) -> None:
    """Plan one delivery per webhook that wants `event` of this alert, at most once each."""
    if event == NotificationEvent.RAISED and alert.flapping and "flap" not in (alert.details or {}):
        return  # a flapping episode's later raises
    scopes = [alert.organization_id]
    if alert.organization_id is not None and event == NotificationEvent.ESCALATED:
        scopes.append(None)  # escalations reach the platform's webhooks too
    wanted = [webhook_id for scope in scopes for webhook_id, events in _webhooks(scope) if event in events]
    if not wanted:
        return
    sent = _sent(alert.id, wanted, (event, *TOLD_OF))
    done = {webhook_id for webhook_id, sent_event in sent if sent_event == event}
    if event == NotificationEvent.RESOLVED:
        told = {webhook_id for webhook_id, sent_event in sent if sent_event in TOLD_OF}
        wanted = [webhook_id for webhook_id in wanted if webhook_id in told]
    rows = [{"webhook_id": webhook_id, "alert_id": alert.id, "event": event, "message_id": new_message_id(),
             "status": DeliveryStatus.PENDING.value, "due_at": now, "created_at": now}
            for webhook_id in wanted if webhook_id not in done]
    if not rows:
        return
    body = payload.for_alert(alert, event, now)
    for row in rows:
        delivery_id = db.session.scalar(_insert_once().values(**row, payload=body).returning(WebhookDelivery.id))
        if delivery_id is not None:
            deliver_after_commit("jobs.webhooks.send_delivery", delivery_id, job_id=f"webhook-{delivery_id}")


def new_message_id() -> str:
    """The `webhook-id` of a message: kept across its retries."""
    return "msg_" + secrets.token_urlsafe(18)


def _webhooks(organization_id: int | None) -> list[tuple[int, list[str]]]:
    """The enabled, not removed webhooks of an organization (None: the platform's), with the events each wants."""
    cache: dict[int | None, list[tuple[int, list[str]]]] = db.session.info.setdefault(_CACHE, {})
    if organization_id not in cache:
        scope = Webhook.organization_id.is_(None) if organization_id is None \
            else Webhook.organization_id == organization_id
        with db.session.no_autoflush:  # the writer's pending changes are alerts, never webhooks
            cache[organization_id] = [(row.id, list(row.events or [])) for row in db.session.execute(
                sa.select(Webhook.id, Webhook.events).where(scope, Webhook.enabled, Webhook.removed_at.is_(None)))]
    return cache[organization_id]


def _sent(alert_id: int, webhook_ids: list[int], events: tuple[str, ...]) -> set[tuple[int, str]]:
    """(webhook, event) of the deliveries of the alert among these webhooks and events."""
    return set(db.session.execute(
        sa.select(WebhookDelivery.webhook_id, WebhookDelivery.event).where(
            WebhookDelivery.alert_id == alert_id, WebhookDelivery.event.in_(events),
            WebhookDelivery.webhook_id.in_(webhook_ids))).tuples())


def _insert_once() -> sa.Insert:
    """An INSERT that the (webhook, alert, event) unique constraint turns into nothing instead of an error, so
    a race lost to another transaction never breaks the writer's."""
    dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(db.session.get_bind().dialect.name)
    if dialect is None:
        return sa.insert(WebhookDelivery)
    return dialect.insert(WebhookDelivery).on_conflict_do_nothing()


@sa.event.listens_for(Session, "after_commit")
@sa.event.listens_for(Session, "after_rollback")
def _end_of_transaction(session: Session) -> None:
    session.info.pop(_CACHE, None)
