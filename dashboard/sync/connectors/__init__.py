"""Adapters by provider name."""
from __future__ import annotations

from typing import Any

from dashboard.sync.connectors.base import Adapter, OutgoingRecord, PushResult

__all__ = ["Adapter", "OutgoingRecord", "PushResult", "adapter_for"]


def adapter_for(provider: str, settings: dict[str, Any], secret: str | None) -> Adapter:
    """Build the adapter for a connector row's provider, settings and secret."""
    if provider == "sandbox":
        from dashboard.sync.connectors.sandbox import SandboxAdapter

        return SandboxAdapter(settings)
    if provider == "http":
        from dashboard.sync.connectors.http import HttpAdapter

        return HttpAdapter(settings, secret)
    raise ValueError(f"connector provider {provider!r} has no adapter")
