"""Sync jobs: one connector's batch, and the periodic fan-out over enabled connectors."""
from __future__ import annotations

import logging

from jobs import in_app_context

log = logging.getLogger(__name__)


def enqueue_sync(connector_id: int) -> bool:
    """Queue a sync of one connector at once; False when Redis cannot be reached."""
    from dashboard.queues import sync_now

    return sync_now(connector_id)


@in_app_context
def sync_connector(connector_id: int) -> None:
    from dashboard.sync.orchestrator import sync_connector as run

    run(connector_id)


@in_app_context
def sync_all() -> None:
    """Queue a sync for every enabled connector that this service pushes for."""
    from dashboard.sync.orchestrator import connectors_to_sync

    for connector_id in connectors_to_sync():
        enqueue_sync(connector_id)
