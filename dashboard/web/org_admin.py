"""(filled by issue 14's work)"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("org_admin", __name__)
