"""Per-organization API tokens (built in the orchestrator issue)."""
from __future__ import annotations

from flask.cli import AppGroup

tokens_cli = AppGroup("tokens", help="Manage ingestion API tokens.")
