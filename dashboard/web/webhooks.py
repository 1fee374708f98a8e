"""(filled by issue 12's work)"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("webhooks", __name__)
