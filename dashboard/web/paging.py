"""One keyset cursor for every paged list (the status screen's records, the alerts page).

A list is read in one order: a sort value, then the row id. A cursor holds the
value and id of the row at a page's edge, and the next page starts strictly
after it, so rows inserted between requests never shift a page and no row is
skipped or repeated.

The cursor travels in the URL (`?after=` or `?before=`) in one of two forms:
- a list with several sorts writes a token that names the sort (URL-safe base64
  of the JSON `[sort, value, id]`), so a link made under one sort is refused
  under another;
- a list with a single order by time (`sort` is None) writes `<ISO time>_<id>`.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _

from dashboard.sync.payload import MAX_AMOUNT_MINOR
from dashboard.web.converters import MAX_ID
from dashboard.web.query_args import FilterError


class BadCursor(FilterError):
    """A page link that this list did not write, or wrote for another sort."""

    def __str__(self) -> str:
        return _("This page link is out of date; start again from the first page.")


@dataclass(frozen=True)
class Cursor:
    """The edge of a page: the edge row's sort value and id, under the sort it was made for."""

    sort: str | None
    """The sort the cursor was made for ("-amount": descending); None in a list with a single order."""
    value: datetime | int
    id: int

    def encode(self) -> str:
        """The cursor as the URL carries it: a token naming the sort, or `<ISO time>_<id>` without a sort."""
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        if self.sort is None:
            return f"{value}_{self.id}"
        raw = json.dumps([self.sort, value, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, sort: str | None, kind: type | None = None) -> "Cursor":
        """Read a cursor written by `encode` for `sort`; `kind` (datetime or int) is the value the sort needs.

        Raises:
            BadCursor: for anything else, including a token made for another sort.
        """
        try:
            cursor = cls._plain(token) if sort is None else cls._token(token, sort)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as error:
            raise BadCursor(token) from error
        if not _storable_int(cursor.id, MAX_ID) or (kind is not None and not isinstance(cursor.value, kind)):
            raise BadCursor(token)
        return cursor

    @classmethod
    def _plain(cls, token: str) -> "Cursor":
        at, _sep, edge_id = token.rpartition("_")
        return cls(None, datetime.fromisoformat(at), int(edge_id))

    @classmethod
    def _token(cls, token: str, sort: str) -> "Cursor":
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cursor_sort, value, edge_id = json.loads(raw)  # json.JSONDecodeError is a ValueError
        if cursor_sort != sort:
            raise ValueError(token)
        if isinstance(value, str):
            return cls(sort, datetime.fromisoformat(value), edge_id)
        if not _storable_int(value, MAX_AMOUNT_MINOR):
            raise ValueError(token)
        return cls(sort, value, edge_id)


def _storable_int(value: Any, largest: int) -> bool:
    """True for an int the column (an id, or an amount) can hold and compare (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= largest
