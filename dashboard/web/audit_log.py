"""(filled by issue 14's work)"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("audit_log", __name__)
