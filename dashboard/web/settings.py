"""Alert settings: per organization and platform-wide (built in the alert-rules issue)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("settings", __name__)
