"""URL converters: an id in a URL that no database column can hold answers 404, not a database error."""
from __future__ import annotations

from flask import Flask
from werkzeug.routing import Map
from werkzeug.routing.converters import IntegerConverter

MAX_ID = 2**31 - 1
"""The largest id an id column holds: ids are INTEGER, 32 bits on PostgreSQL (SQLite's hold more)."""


class BoundedIntegerConverter(IntegerConverter):
    """Werkzeug's `int`, with `max` defaulting to MAX_ID: a larger number does not match the rule."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register(app: Flask) -> None:
    """Replace the app's `int` converter; call before any rule is added (the map binds converters then)."""
    app.url_map.converters["int"] = BoundedIntegerConverter
