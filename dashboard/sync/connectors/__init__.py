"""Connectors to accounting systems: the adapter interface, the adapters, and the provider registry."""
from __future__ import annotations

from dashboard.sync.connectors.base import Adapter, OutgoingRecord, PushResult
from dashboard.sync.connectors.registry import adapter_for

__all__ = ["Adapter", "OutgoingRecord", "PushResult", "adapter_for"]
