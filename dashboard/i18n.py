"""The interface language of each request and message (filled by issue 14's work)."""
from __future__ import annotations

from flask import Flask

from dashboard.extensions import babel


def init_app(app: Flask) -> None:
    """Set up Flask-Babel, choosing each request's locale (the person's language, else their organization's)."""
    babel.init_app(app)
