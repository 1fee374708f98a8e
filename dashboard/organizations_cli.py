"""`flask orgs`: organizations from the command line (the organization pages' twins)."""
from __future__ import annotations

from flask.cli import AppGroup

orgs_cli = AppGroup("orgs", help="Create, list and archive organizations.")
