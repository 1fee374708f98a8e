"""The integration status screen (built in the status-screen issue)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("status", __name__)
