"""`flask retention run [--dry-run]`: the sync-log retention by hand (the scheduler runs it daily)."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from dashboard.models import utcnow
from dashboard.sync.retention import apply_retention, retention_days

retention_cli = AppGroup("retention", help="Keep the sync log's growth bounded.")


@retention_cli.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted, and delete nothing.")
def run(dry_run: bool) -> None:
    """Delete the attempts older than SYNC_LOG_RETENTION_DAYS that may go, and the batches they leave empty."""
    days = retention_days(current_app.config)
    result = apply_retention(utcnow(), days, dry_run=dry_run)
    verb = "would delete" if result.dry_run else "deleted"
    click.echo(f"Keeping {days} days of attempts: {verb} {result.attempts} attempts and {result.batches} batches "
               f"from before {result.cutoff:%Y-%m-%d %H:%M} UTC.")
