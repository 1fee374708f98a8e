"""Sending one webhook delivery: claimed in the database, sent with no transaction open, its result recorded.

The claim is one conditional UPDATE (a pending delivery that is due, or one claimed so long ago that its
worker must have died), committed before the request goes out: of two workers racing for a delivery, one
gets the row and the other nothing. Only a worker dying after the receiver answered and before the result
was recorded can send a message twice, with the same `webhook-id`, which receivers use to drop repeats.

A failed delivery is retried with growing pauses for a day after it was planned, then given up. A receiver
answering 410 Gone says the endpoint is no more: the webhook is disabled.
"""
from __future__ import annotations

import http.client
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from dashboard import outbound
from dashboard.alerts.writer import record_event
from dashboard.extensions import db
from dashboard.models import Alert, Webhook, WebhookDelivery, utcnow
from dashboard.claims import claim, claimable
from dashboard.vocabulary import AlertEventKind, DeliveryStatus
from dashboard.webhooks import payload, signing

SEND_TIMEOUT_SECONDS = 8.0
"""Per socket operation; the delivery job has 10 s."""
GIVE_UP_AFTER = timedelta(days=1)
BACKOFF_SECONDS = (5, 30, 120, 600, 1800, 3600)
"""The pause after the first, second, ... failed attempt; after those, `LATER_EVERY_SECONDS`."""
LATER_EVERY_SECONDS = 7200
USER_AGENT = "SyncAlerts-Webhooks/1.0 (+Standard Webhooks)"
MAX_RESPONSE_BYTES = 4096
GONE = 410


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt (1 for the first)."""
    index = max(attempts, 1) - 1
    return timedelta(seconds=BACKOFF_SECONDS[index] if index < len(BACKOFF_SECONDS) else LATER_EVERY_SECONDS)


@dataclass(frozen=True)
class Answer:
    """What the receiver said: an HTTP status, or none and why (refused address, timeout, ...)."""

    status_code: int | None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _VettedConnection:
    """Connects through `outbound.create_connection`: the host resolved once, every address checked, the socket
    to a checked one; http.client keeps the name for the Host header, SNI and the certificate check."""

    def __init__(self, *args: Any, allow_private: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = partial(outbound.create_connection, allow_private=allow_private)


class _VettedHTTPConnection(_VettedConnection, http.client.HTTPConnection):
    pass


class _VettedHTTPSConnection(_VettedConnection, http.client.HTTPSConnection):
    pass


def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool,
         timeout: float = SEND_TIMEOUT_SECONDS) -> Answer:
    """POST the body within `timeout` seconds in all; redirects are not followed (a redirected POST would not be
    the message that was signed)."""
    parts = urlsplit(url)
    kind = {"https": _VettedHTTPSConnection, "http": _VettedHTTPConnection}.get(parts.scheme)
    if kind is None:
        return Answer(None, "not an http(s) URL")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = time.monotonic() + timeout
    connection = kind(parts.netloc.rpartition("@")[2], timeout=timeout, allow_private=allow_private)
    try:
        connection.connect()
        _keep_to(connection, deadline)
        connection.request("POST", target, body=body, headers={
            **headers, "Content-Type": "application/json", "User-Agent": USER_AGENT})
        _keep_to(connection, deadline)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
    except outbound.RefusedAddress as refusal:
        return Answer(None, refusal.describe())
    except (TimeoutError, socket.timeout):
        return Answer(None, f"no answer within {timeout:g} s")
    except ConnectionRefusedError:
        return Answer(None, "connection refused")
    except socket.gaierror:
        return Answer(None, "host not found")
    except (OSError, http.client.HTTPException, ValueError) as error:  # ValueError: a URL http.client refuses
        return Answer(None, (str(error) or type(error).__name__)[:500])
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return Answer(response.status)
    return Answer(response.status, f"HTTP {response.status} {response.reason}".strip()[:500])


def _keep_to(connection: http.client.HTTPConnection, deadline: float) -> None:
    """Shorten the socket's timeout to what is left of the whole request's, so a slow receiver cannot take
    `timeout` for each step (connecting, sending, the answer) and outlive the job."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("no time left")
    connection.sock.settimeout(remaining)


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds: everything needed to send it, read in the claiming transaction."""

    id: int
    attempts: int
    event: str
    alert_id: int | None
    created_at: datetime
    message_id: str
    payload: dict[str, Any]
    webhook_id: int
    url: str
    secret: str
    usable: bool
    """False when the webhook was removed, or disabled (a test is sent to a disabled webhook all the same)."""

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or self.url


def deliver(delivery_id: int, now: datetime | None = None) -> str | None:
    """Claim, send and record one delivery; its status after, or None when it was not ours to send (sent,
    not yet due, or another worker's). Call with no transaction open: it commits twice and sends in between."""
    claim = claim_delivery(delivery_id, now or utcnow())
    if claim is None:
        return None
    if not claim.usable:
        return _finish(claim, now or utcnow(), status=DeliveryStatus.SKIPPED,
                       error="the webhook was removed or disabled before it was sent")
    body = payload.body(claim.payload)
    headers = signing.headers(claim.secret, claim.message_id, int(time.time()), body)
    answer = post(claim.url, body, headers, allow_private=outbound.private_allowed())
    return record(claim, answer, now or utcnow())


def claim_delivery(delivery_id: int, now: datetime) -> Claim | None:
    """Take the delivery (pending and due, or `sending` and stale) in one conditional UPDATE, and commit."""
    if not claim(WebhookDelivery, delivery_id, now):
        db.session.commit()
        return None
    row = db.session.execute(
        sa.select(WebhookDelivery.attempts, WebhookDelivery.event, WebhookDelivery.alert_id,
                  WebhookDelivery.created_at, WebhookDelivery.message_id, WebhookDelivery.payload,
                  Webhook.id, Webhook.url, Webhook.secret, Webhook.enabled, Webhook.removed_at)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id).where(WebhookDelivery.id == delivery_id)
    ).one()
    db.session.commit()
    attempts, event, alert_id, created_at, message_id, body, webhook_id, url, secret, enabled, removed_at = row
    return Claim(id=delivery_id, attempts=attempts, event=event, alert_id=alert_id, created_at=created_at,
                 message_id=message_id, payload=body, webhook_id=webhook_id, url=url, secret=secret,
                 usable=removed_at is None and (enabled or event == payload.TEST_EVENT))


def record(claim: Claim, answer: Answer, now: datetime) -> str:
    """Record the answer: sent; or pending again after a pause; or, a day after it was planned (at once for a
    test, or when the endpoint is gone), failed. The alert's timeline tells of a delivery and of giving up."""
    kind = payload.event_type(claim.event)
    if answer.delivered:
        return _finish(claim, now, status=DeliveryStatus.SENT, answer=answer,
                       event=f"{kind} delivered to {_endpoint(claim)} ({answer.status_code})")
    gone = answer.status_code == GONE
    if gone or claim.event == payload.TEST_EVENT or now >= claim.created_at + GIVE_UP_AFTER:
        if gone:
            db.session.execute(sa.update(Webhook).where(Webhook.id == claim.webhook_id).values(enabled=False))
        why = "the endpoint answered 410 Gone: the webhook is disabled" if gone else answer.error
        return _finish(claim, now, status=DeliveryStatus.FAILED, answer=answer,
                       event=f"{kind} to {_endpoint(claim)} given up after {claim.attempts} "
                             f"{'attempt' if claim.attempts == 1 else 'attempts'}: {why}")
    return _finish(claim, now, status=DeliveryStatus.PENDING, answer=answer, due_at=now + retry_delay(claim.attempts))


def _endpoint(claim: Claim) -> str:
    """How an alert's timeline (read by its organization's admins) names the endpoint: its host, but not the host of
    the platform's own webhook (told of an organization's escalation), which is the platform's business."""
    platform = db.session.scalar(sa.select(Webhook.organization_id.is_(None)).where(Webhook.id == claim.webhook_id))
    return "the platform's webhook" if platform else claim.host


def _finish(claim: Claim, now: datetime, *, status: str, answer: Answer | None = None, error: str = "",
            event: str = "", due_at: datetime | None = None) -> str:
    """Write the outcome if the claim is still ours (the same attempt), with its alert event; commit."""
    values: dict[str, Any] = {"status": status, "last_error": (answer.error if answer else error)[:500]}
    if answer is not None:
        values["last_status_code"] = answer.status_code
    if status == DeliveryStatus.SENT:
        values["sent_at"] = now
    if due_at is not None:
        values["due_at"] = due_at
    written = db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == claim.id, WebhookDelivery.status == DeliveryStatus.SENDING,
               WebhookDelivery.attempts == claim.attempts)
        .values(**values).execution_options(synchronize_session=False)
    ).rowcount
    if written and event and claim.alert_id is not None and (alert := db.session.get(Alert, claim.alert_id)):
        record_event(alert, AlertEventKind.WEBHOOK, now, detail=event)
    db.session.commit()
    return status


def due(now: datetime, limit: int = 500) -> list[tuple[int, int]]:
    """(id, attempts) of the deliveries to send now: pending and due, or claimed by a worker that died.

    One range scan of the (status, due_at) index: a claimed delivery was due before it was claimed.
    """
    return [(row.id, row.attempts) for row in db.session.execute(
        sa.select(WebhookDelivery.id, WebhookDelivery.attempts)
        .where(claimable(WebhookDelivery, now))
        .order_by(WebhookDelivery.due_at).limit(limit)
    )]
