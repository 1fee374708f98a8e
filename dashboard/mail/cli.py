"""`flask mail`: read the messages written to the Maildir when no SMTP server is set."""
from __future__ import annotations

import email
import mailbox
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import default
from email.utils import parsedate_to_datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

mail_cli = AppGroup("mail", help="Read the emails written to the Maildir (no SMTP_URL set).")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def newest_first(path: Path) -> list[EmailMessage]:
    """The Maildir's messages, newest first (by their Date header)."""
    if not path.is_dir():
        return []
    box = mailbox.Maildir(str(path), create=False)
    messages = [email.message_from_bytes(box.get_bytes(key), policy=default) for key in box.keys()]
    return sorted(messages, key=_date, reverse=True)  # type: ignore[arg-type]


def _date(message: EmailMessage) -> datetime:
    try:
        return parsedate_to_datetime(message["Date"])
    except (TypeError, ValueError):
        return _EPOCH


def _maildir() -> Path:
    return Path(current_app.config["MAILDIR_PATH"])


@mail_cli.command("list")
@click.option("--limit", default=50, show_default=True, help="How many messages to list.")
def list_messages(limit: int) -> None:
    """List the messages, newest first: number, date, recipient, subject."""
    messages = newest_first(_maildir())
    if not messages:
        click.echo(f"No messages in {_maildir()}.")
        return
    for number, message in enumerate(messages[:limit], start=1):
        click.echo(f"{number:>4}  {_date(message):%Y-%m-%d %H:%M:%S %z}  {message['To']}  {message['Subject']}")


@mail_cli.command("show")
@click.argument("number", type=int)
@click.option("--html", is_flag=True, help="Print the HTML part instead of the plain text.")
def show_message(number: int, html: bool) -> None:
    """Print message NUMBER of `flask mail list`: its headers and its plain-text (or HTML) part."""
    messages = newest_first(_maildir())
    if not 1 <= number <= len(messages):
        raise click.BadParameter(f"there are {len(messages)} messages", param_hint="NUMBER")
    message = messages[number - 1]
    for header in ("Date", "From", "To", "Subject", "Message-ID", "In-Reply-To", "List-Unsubscribe"):
        if message[header]:
            click.echo(f"{header}: {message[header]}")
    body = message.get_body(preferencelist=("html",) if html else ("plain", "html"))
    click.echo("")
    click.echo(body.get_content() if body is not None else "(no text part)")
