"""Whether a request asks for a fragment (an htmx partial) or for the whole page."""
from __future__ import annotations

from flask import request


def wants_fragment() -> bool:
    """True for an htmx request for a fragment.

    A history restore (htmx fetching a page missing from its history cache) wants
    the whole page, as a plain browser request does.
    """
    return bool(request.htmx) and not request.htmx.history_restore_request
