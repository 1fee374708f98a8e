"""Values read from a page's query string: ids, and the error for values the page does not know."""
from __future__ import annotations

from dashboard.web.converters import MAX_ID


class FilterError(ValueError):
    """A filter, sort, cursor or selection in the URL that the page does not know; answered with 400."""


def row_id(value: str) -> int | None:
    """A database id written in ASCII digits, or None (also for numbers no database column holds)."""
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= len(str(MAX_ID)) and int(value) <= MAX_ID:
        return int(value)
    return None
