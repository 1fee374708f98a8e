"""Daily digest emails, on the delivery queue."""
from __future__ import annotations

from jobs import in_app_context


@in_app_context
def send_due_digests() -> None:
    """Make the digest of every person whose chosen local time has come today."""
