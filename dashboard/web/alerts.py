"""An organization's alerts page (built in the status-screen issue)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("alerts", __name__)
