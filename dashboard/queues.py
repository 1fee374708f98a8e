"""RQ queues. Alert evaluation has its own queue, which workers take first."""
from __future__ import annotations

from flask import current_app
from rq import Queue

from dashboard.extensions import redis_ext


def alerts_queue() -> Queue:
    return Queue(current_app.config["QUEUE_ALERTS"], connection=redis_ext.client)


def sync_queue() -> Queue:
    return Queue(current_app.config["QUEUE_SYNC"], connection=redis_ext.client)
