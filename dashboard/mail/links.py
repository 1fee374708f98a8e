"""Absolute links for messages read outside the app: they start with `PUBLIC_BASE_URL`."""
from __future__ import annotations

from flask import current_app


def public_url(path: str) -> str:
    """`path` (starting with /) under the service's public address."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


PREFERENCES_PATH = "/account/notifications"
"""Where a person chooses what reaches them by email (the `List-Unsubscribe` target)."""


def preferences_url() -> str:
    return public_url(PREFERENCES_PATH)


def unsubscribe_url() -> str:
    """The `List-Unsubscribe` target: the preferences page with "never" chosen, saved only when the person saves."""
    return public_url(PREFERENCES_PATH + "?unsubscribe=1")
