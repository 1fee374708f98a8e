"""`flask mail`: read the messages written to the Maildir when no SMTP server is set."""
from __future__ import annotations

from flask.cli import AppGroup

mail_cli = AppGroup("mail", help="Read the emails written to the Maildir (no SMTP_URL set).")
