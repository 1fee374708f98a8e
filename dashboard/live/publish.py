"""The one place that publishes live events.

Events are queued on the database session and published to Redis only after
its transaction commits, so a browser never hears of a row that a rollback
took back. Redis carries pushes only: if it is down the event is dropped, and
the browser catches up from the database when its stream reconnects. Messages
use flask-sse's format, so any flask-sse stream can read them.
"""
from __future__ import annotations

import itertools
import json
import logging
import time
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_sse import Message
from sqlalchemy.orm import Session

from dashboard.extensions import db

log = logging.getLogger(__name__)
_KEY = "live_events"
CHANNEL_PREFIX = "sse:"
PLATFORM_CHANNEL = "platform"
_sequence = itertools.count()


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def organization_channel(organization_id: int) -> str:
    return f"org:{organization_id}"


def queue_event(channel: str, event: str, data: dict[str, Any] | None = None) -> None:
    """Publish `event` on `channel` once the current transaction commits (unless the app's `LIVE_EVENTS`
    is off: a replay's scratch app, whose alerts nobody watches)."""
    if not current_app.config.get("LIVE_EVENTS", True):
        return
    pending: list[tuple[str, str, dict[str, Any]]] = db.session.info.setdefault(_KEY, [])
    item = (channel, event, data or {})
    if item not in pending:
        pending.append(item)


def publish_now(channel: str, event: str, data: dict[str, Any]) -> None:
    """Publish one event at once; logs and drops it when Redis is unreachable."""
    _publish([(channel, event, data)])


def _publish(events: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Publish events in order, in one round trip to Redis; logs and drops them when Redis is unreachable."""
    from dashboard.extensions import redis_ext

    pipe = redis_ext.client.pipeline(transaction=False)
    for channel, event, data in events:
        message = Message({**data, "channel": channel}, type=event, id=f"{time.time_ns()}-{next(_sequence)}")
        pipe.publish(CHANNEL_PREFIX + channel, json.dumps(message.to_dict()))
    try:
        pipe.execute()
    except Exception:  # noqa: BLE001 - the database has it; browsers re-fetch on reconnect
        log.warning("%d live event(s) not published (Redis unreachable): %s", len(events),
                    ", ".join(f"{event} on {channel}" for channel, event, _ in events))


@sa.event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    """A transaction's events go out together once it has committed (one round trip, however many)."""
    pending = session.info.pop(_KEY, None)
    if not pending or not current_app:
        return
    _publish(pending)


@sa.event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)
